"""Traffic routing with a Gateway API HTTPRoute: the second implementation of ``Router``.

Why: Istio in ambient mode (and every other Gateway API implementation) routes with
HTTPRoutes, not VirtualServices; ``provider: gatewayapi:v1`` (Flagger's name) selects this
router, and everything else about the canary (workloads, Services, analysis) is shared.

What it writes, as Flagger does: an HTTPRoute ``<apex>`` attached to ``service.gatewayRefs``
(its ``parentRefs``), with ``service.hosts`` as its ``hostnames`` and one rule whose two
``backendRefs``, the Services ``<apex>-primary`` and ``<apex>-canary`` on the service port,
carry the weights (``service.timeout`` becomes the rule's request timeout, ``service.headers``
its header modifier filters). Fields the API
server would default are written out, so the stored object equals the one written and a
reconcile that changes nothing writes nothing. The rules are the same as IstioRouter's:
every traffic change reads the live HTTPRoute, changes only the two weights (restoring our
backends if someone removed them) and writes it back with its ``resourceVersion``; a 409
makes us read and re-apply. Hand edits to other fields (filters, further rules) survive.
"""

from __future__ import annotations

import copy
from typing import Any

from activities import kube
from activities.canary.istio_routes import RouteOptions
from activities.canary.objects import CANARY, OwnerReferences
from activities.canary.routing import SplitRouter
from models.canary import CanarySpec

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
HTTP_ROUTES = "httproutes"


class GatewayApiRouter(SplitRouter):
    """Routes a canary with a Gateway API HTTPRoute (``provider: gatewayapi:v1``)."""

    def __init__(self, spec: CanarySpec, namespace: str, workflow_id: str) -> None:
        self.spec = spec
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.apex = spec.apex
        self.version = spec.provider.removeprefix("gatewayapi:")
        self.primary_host = f"{self.apex}-primary"
        self.canary_host = f"{self.apex}-canary"

    # ------------------------------------------------------------ desired object

    def backend_refs(self, primary: int, canary: int) -> list[dict[str, Any]]:
        """Our two weighted backends, with the fields the API server defaults written out."""
        port = self.spec.service.port
        return [
            {"group": "", "kind": "Service", "name": host, "port": port, "weight": weight}
            for host, weight in ((self.primary_host, primary), (self.canary_host, canary))
        ]

    def filters(self) -> list[dict[str, Any]]:
        """``service.headers`` (Istio's shape) as header modifier filters, as Flagger does."""
        found = []
        for side, changes in (self.spec.service.headers or {}).items():
            modifier: dict[str, Any] = {}
            for operation in ("set", "add"):
                if changes.get(operation):
                    modifier[operation] = [
                        {"name": name, "value": value} for name, value in changes[operation].items()
                    ]
            if changes.get("remove"):
                modifier["remove"] = list(changes["remove"])
            if modifier:
                kind = f"{side.capitalize()}HeaderModifier"
                found.append({"type": kind, f"{side}HeaderModifier": modifier})
        return found

    def rule(self, primary: int, canary: int) -> dict[str, Any]:
        """The rule that splits the traffic (every path, as the API's default match)."""
        rule: dict[str, Any] = {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": self.backend_refs(primary, canary),
        }
        filters = self.filters()
        if filters:
            rule["filters"] = filters
        if self.spec.service.timeout:
            rule["timeouts"] = {"request": self.spec.service.timeout}
        return rule

    def parent_refs(self) -> list[dict[str, Any]]:
        """``service.gatewayRefs`` as ParentReferences, unset fields left out."""
        return [
            ref.model_dump(by_alias=True, exclude_none=True)
            for ref in self.spec.service.gateway_refs
        ]

    def http_route(self, primary: int = 100, canary: int = 0) -> dict[str, Any]:
        """The HTTPRoute as it should be at a given split."""
        spec: dict[str, Any] = {
            "parentRefs": self.parent_refs(),
            "rules": [self.rule(primary, canary)],
        }
        if self.spec.service.hosts:
            spec["hostnames"] = list(self.spec.service.hosts)
        return {
            "apiVersion": f"{GATEWAY_API_GROUP}/{self.version}",
            "kind": "HTTPRoute",
            "metadata": CANARY.metadata(self.apex, self.namespace, self.workflow_id),
            "spec": spec,
        }

    # ------------------------------------------------------------ reading routes

    def weights(self, http_route: dict[str, Any]) -> tuple[int, int] | None:
        """(primary, canary) from the first rule, or None if our backends are not there."""
        rules = (http_route.get("spec") or {}).get("rules") or []
        if not rules:
            return None
        found: dict[str, int] = {}
        for ref in rules[0].get("backendRefs") or []:
            if ref.get("name") in (self.primary_host, self.canary_host):
                found[ref["name"]] = int(ref.get("weight", 1))
        if set(found) != {self.primary_host, self.canary_host}:
            return None
        return found[self.primary_host], found[self.canary_host]

    # ------------------------------------------------------------ API calls

    def _api(self) -> tuple[str, str, str, str]:
        return GATEWAY_API_GROUP, self.version, self.namespace, HTTP_ROUTES

    async def _read(self) -> dict[str, Any]:
        obj: dict[str, Any] = await CANARY.call(
            kube.custom().get_namespaced_custom_object, *self._api(), self.apex
        )
        return obj

    async def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` when it has no resourceVersion, else replace the live one."""
        custom = kube.custom()
        manager = CANARY.field_manager
        if obj["metadata"].get("resourceVersion") is None:
            created: dict[str, Any] = await CANARY.call(
                custom.create_namespaced_custom_object, *self._api(), obj, field_manager=manager
            )
            return created
        replaced: dict[str, Any] = await CANARY.call(
            custom.replace_namespaced_custom_object,
            *self._api(),
            self.apex,
            obj,
            field_manager=manager,
        )
        return replaced

    # ------------------------------------------------------------ the interface

    async def reconcile(self, owners: OwnerReferences | None = None) -> None:
        """Create or update the HTTPRoute, keeping the live weights and further rules."""
        desired = self.http_route()
        if owners:  # for a new HTTPRoute; a live one keeps its own
            desired["metadata"]["ownerReferences"] = owners

        def change(live: dict[str, Any]) -> bool:
            CANARY.refuse_foreign(live)
            wanted = copy.deepcopy(desired["spec"])
            current = self.weights(live)
            if current is not None:
                wanted["rules"][0] = self.rule(*current)
                wanted["rules"][1:] = (live["spec"].get("rules") or [])[1:]
            if live.get("spec") == wanted:
                return False
            live["spec"] = wanted
            return True

        await kube.ensure(
            desired,
            lambda: CANARY.read_or_none(
                kube.custom().get_namespaced_custom_object, *self._api(), self.apex
            ),
            self._write,
            change,
            self._write,
        )

    async def _read_route(self) -> dict[str, Any]:
        return await self._read()

    async def _write_route(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._write(obj)

    def _split(
        self, obj: dict[str, Any], primary: int, canary: int, options: RouteOptions | None
    ) -> bool:
        """Put the split into the live HTTPRoute; False when it already says so.

        ``options`` (a mirror, an affinity cookie) only the Istio router writes: specs that
        would need them are refused at load with this provider, so there is never one here.
        """
        rules = obj.setdefault("spec", {}).setdefault("rules", [])
        refs = (rules[0].get("backendRefs") or []) if rules else []
        if len(refs) == 2 and self.weights(obj) == (primary, canary):
            return False
        if not rules:
            rules.append(self.rule(primary, canary))
        elif len(refs) != 2 or self.weights(obj) is None:
            rules[0]["backendRefs"] = self.backend_refs(primary, canary)
        else:
            for ref in refs:
                if ref["name"] == self.primary_host:
                    ref["weight"] = primary
                elif ref["name"] == self.canary_host:
                    ref["weight"] = canary
        return True
