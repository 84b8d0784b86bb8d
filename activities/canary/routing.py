"""Traffic routing behind a small interface: Istio here, the Gateway API beside it.

Why an interface: Flagger keeps one file per mesh behind ``Reconcile / SetRoutes /
GetRoutes / Finalize``; the Gateway API is a second class
(:mod:`activities.canary.gatewayapi`), :func:`router_for` picks one by ``spec.provider``,
and the activities do not change.

How Istio is driven: a VirtualService ``<apex>`` whose first http route has two weighted
destinations, hosts ``<apex>-primary`` and ``<apex>-canary`` (the Services of
:mod:`activities.canary.services`), and a DestinationRule per host carrying
``service.trafficPolicy``. With ``service.delegation`` the VirtualService has no hosts and no
gateways, so a root VirtualService can delegate to it. Every traffic change reads the live
VirtualService first and changes only the two weights (and restores our destinations if
someone removed them), writing it back with its ``resourceVersion``; a concurrent writer
gets us a 409 and we re-read and re-apply. Manual edits to other fields survive.

Flagger's other strategies (A/B ``match``, ``mirror``, ``sessionAffinity``, and
``service.match``) need more than one weighted route; their routes are built by
:mod:`activities.canary.istio_routes` and, as Flagger does, written whole at every change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from activities import kube
from activities.canary import workloads
from activities.canary.istio_routes import IstioRoutes, RouteOptions, uses_strategy_routes
from activities.canary.objects import (
    CANARY,
    ISTIO_GROUP,
    ISTIO_VERSION,
    OwnerReferences,
    owned_by,
)
from models.canary import CanarySpec

VIRTUAL_SERVICES = "virtualservices"
DESTINATION_RULES = "destinationrules"


@dataclass(frozen=True)
class Routes:
    """The split as the live VirtualService has it."""

    primary: int
    canary: int
    resource_version: str | None = None
    conflicts: int = 0
    obj: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class Router(Protocol):
    """What a mesh must offer the canary operator."""

    async def reconcile(self, owners: OwnerReferences | None = None) -> None:
        """Create or update the routing objects, keeping the current weights; ``owners``
        become the ownerReferences of those it creates."""

    async def get_routes(self) -> Routes:
        """Read the live split."""

    async def set_routes(
        self,
        primary: int,
        canary: int,
        live: Routes | None = None,
        options: RouteOptions | None = None,
    ) -> Routes:
        """Write a split (with a strategy's mirror or affinity cookie), reconciling."""


class SplitRouter:
    """What both meshes share: reading the live split, and writing it by read-modify-write.

    Why one class: the loop (read the live object, change only our two weights, write it back
    with its ``resourceVersion``, re-read and re-apply on a 409, create what is missing) is
    the same whatever object carries the weights; each mesh says only how to read and write
    its object and where the two weights sit in it.
    """

    spec: CanarySpec
    namespace: str
    apex: str

    async def reconcile(self, owners: OwnerReferences | None = None) -> None:
        """Create or update the routing objects, keeping the current weights."""
        raise NotImplementedError

    def weights(self, obj: dict[str, Any]) -> tuple[int, int] | None:
        """(primary, canary) as ``obj`` has them, or None if our two backends are not there."""
        raise NotImplementedError

    async def _read_route(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _write_route(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _split(
        self, obj: dict[str, Any], primary: int, canary: int, options: RouteOptions | None
    ) -> bool:
        raise NotImplementedError

    async def get_routes(self) -> Routes:
        """Read the live split (creating the routing objects if they are missing).

        Routes created again are owned by the target Deployment, as the first ones were. When
        the Deployment is gone too, the garbage collector took the routes with it: nothing
        is created (it would outlive the Deployment, owned by nobody) and the 404 is raised.
        """
        try:
            live = await self._read_route()
        except Exception as error:
            if not kube.is_not_found(error):
                raise
            target = await workloads.read_or_none(self.namespace, self.spec.target_ref.name)
            if target is None:
                raise
            await self.reconcile(owned_by(target))
            live = await self._read_route()
        weights = self.weights(live)
        primary, canary = weights if weights is not None else (100, 0)
        return Routes(primary, canary, live["metadata"].get("resourceVersion"), obj=live)

    async def set_routes(
        self,
        primary: int,
        canary: int,
        live: Routes | None = None,
        options: RouteOptions | None = None,
    ) -> Routes:
        """Set the two weights on the live object (409 → re-read and retry).

        Args:
            primary: Percent to the primary (for A/B: of the requests that match).
            canary: Percent to the canary (for A/B: of the requests that match).
            live: What the caller read earlier; the first write uses its resourceVersion.
            options: A strategy's mirror and affinity cookie at this split (none: neither).
        """
        if primary + canary != 100 or min(primary, canary) < 0:
            raise ValueError(f"weights must be 0..100 and add up to 100, got {primary}/{canary}")

        def change(obj: dict[str, Any]) -> bool:
            CANARY.refuse_foreign(obj)
            return self._split(obj, primary, canary, options)

        stored, conflicts = await kube.read_modify_write(
            self._read_route,
            change,
            self._write_route,
            live=copy.deepcopy(live.obj) if live is not None and live.obj else None,
        )
        return Routes(
            primary, canary, stored["metadata"].get("resourceVersion"), conflicts, obj=stored
        )


class IstioRouter(SplitRouter):
    """Routes a canary with an Istio VirtualService and two DestinationRules."""

    def __init__(self, spec: CanarySpec, namespace: str, workflow_id: str) -> None:
        self.spec = spec
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.apex = spec.apex
        self.primary_host = f"{self.apex}-primary"
        self.canary_host = f"{self.apex}-canary"
        self.routes = IstioRoutes(spec, self.primary_host, self.canary_host)
        #: A/B, mirror, session affinity or service.match: routes written whole.
        self.strategic = uses_strategy_routes(spec)

    # ------------------------------------------------------------ desired objects

    def destination_rule(self, host: str) -> dict[str, Any]:
        """The DestinationRule for one of our two hosts."""
        spec: dict[str, Any] = {"host": host}
        if self.spec.service.traffic_policy:
            spec["trafficPolicy"] = copy.deepcopy(self.spec.service.traffic_policy)
        return {
            "apiVersion": f"{ISTIO_GROUP}/{ISTIO_VERSION}",
            "kind": "DestinationRule",
            "metadata": CANARY.metadata(host, self.namespace, self.workflow_id),
            "spec": spec,
        }

    def route(self, primary: int, canary: int) -> dict[str, Any]:
        """The http route: two weighted destinations plus the user's route options."""
        return self.routes.weighted(primary, canary)

    def virtual_service(self, primary: int = 100, canary: int = 0) -> dict[str, Any]:
        """The VirtualService as it should be at a given split.

        With ``service.delegation`` (Flagger's field) it has neither hosts nor gateways: it
        is the delegate of a root VirtualService the user writes, which names the hosts and
        gateways and hands matching requests over with ``delegate: {name: <apex>}``.
        """
        spec: dict[str, Any] = {
            "http": self.routes.http(primary, canary, RouteOptions())
            if self.strategic
            else [self.route(primary, canary)],
        }
        if not self.spec.service.delegation:
            spec["hosts"] = [self.apex, *[h for h in self.spec.service.hosts if h != self.apex]]
        if self.spec.service.gateways:
            spec["gateways"] = list(self.spec.service.gateways)
        return {
            "apiVersion": f"{ISTIO_GROUP}/{ISTIO_VERSION}",
            "kind": "VirtualService",
            "metadata": CANARY.metadata(self.apex, self.namespace, self.workflow_id),
            "spec": spec,
        }

    # ------------------------------------------------------------ reading routes

    def weights(self, virtual_service: dict[str, Any]) -> tuple[int, int] | None:
        """(primary, canary) from the first http route, or None if ours are not there."""
        routes = (virtual_service.get("spec") or {}).get("http") or []
        if self.strategic:
            return self.routes.weights(routes)
        if not routes:
            return None
        found: dict[str, int] = {}
        for entry in routes[0].get("route") or []:
            host = (entry.get("destination") or {}).get("host")
            if host in (self.primary_host, self.canary_host):
                found[host] = int(entry.get("weight") or 0)
        if set(found) != {self.primary_host, self.canary_host}:
            return None
        return found[self.primary_host], found[self.canary_host]

    # ------------------------------------------------------------ API calls

    def _api(self, plural: str) -> tuple[str, str, str, str]:
        return ISTIO_GROUP, ISTIO_VERSION, self.namespace, plural

    async def _read(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await CANARY.call(
            kube.custom().get_namespaced_custom_object, *self._api(plural), name
        )
        return obj

    async def _replace(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await CANARY.call(
            kube.custom().replace_namespaced_custom_object,
            *self._api(plural),
            obj["metadata"]["name"],
            obj,
            field_manager=CANARY.field_manager,
        )
        return result

    async def _create(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await CANARY.call(
            kube.custom().create_namespaced_custom_object,
            *self._api(plural),
            obj,
            field_manager=CANARY.field_manager,
        )
        return result

    async def _ensure(
        self,
        plural: str,
        desired: dict[str, Any],
        keep_weights: bool,
        owners: OwnerReferences | None,
    ) -> None:
        name = desired["metadata"]["name"]
        if owners:  # for a new object; a live one keeps its own
            desired["metadata"]["ownerReferences"] = owners

        def change(live: dict[str, Any]) -> bool:
            CANARY.refuse_foreign(live)
            wanted = copy.deepcopy(desired["spec"])
            if keep_weights:
                current = self.weights(live)
                if current is not None and self.strategic:
                    wanted["http"] = live["spec"].get("http")  # set_routes shapes them
                elif current is not None:
                    wanted["http"][0] = self.route(*current)
                    wanted["http"][1:] = (live["spec"].get("http") or [])[1:]
            if live.get("spec") == wanted:
                return False
            live["spec"] = wanted
            return True

        await kube.ensure(
            desired,
            lambda: CANARY.read_or_none(
                kube.custom().get_namespaced_custom_object, *self._api(plural), name
            ),
            lambda obj: self._create(plural, obj),
            change,
            lambda obj: self._replace(plural, obj),
        )

    # ------------------------------------------------------------ the interface

    async def reconcile(self, owners: OwnerReferences | None = None) -> None:
        """Create or update both DestinationRules and the VirtualService, keeping weights."""
        for host in (self.primary_host, self.canary_host):
            rule = self.destination_rule(host)
            await self._ensure(DESTINATION_RULES, rule, keep_weights=False, owners=owners)
        await self._ensure(VIRTUAL_SERVICES, self.virtual_service(), True, owners)

    async def _read_route(self) -> dict[str, Any]:
        return await self._read(VIRTUAL_SERVICES, self.apex)

    async def _write_route(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._replace(VIRTUAL_SERVICES, obj)

    def _split(
        self, obj: dict[str, Any], primary: int, canary: int, options: RouteOptions | None
    ) -> bool:
        """Put the split into the live VirtualService; False when it already says so."""
        http = obj.setdefault("spec", {}).setdefault("http", [])
        if self.strategic:
            wanted = self.routes.http(primary, canary, options or RouteOptions())
            if http == wanted:
                return False
            obj["spec"]["http"] = wanted
            return True
        ours_only = bool(http) and len(http[0].get("route") or []) == 2
        if ours_only and self.weights(obj) == (primary, canary):
            return False
        if not http:
            http.append(self.route(primary, canary))
        elif not ours_only or self.weights(obj) is None:
            http[0]["route"] = self.route(primary, canary)["route"]
        else:
            for entry in http[0]["route"]:
                host = entry["destination"]["host"]
                if host == self.primary_host:
                    entry["weight"] = primary
                elif host == self.canary_host:
                    entry["weight"] = canary
        return True


def router_for(spec: CanarySpec, namespace: str, workflow_id: str) -> Router:
    """The router of ``spec.provider``: Istio (the default) or a Gateway API HTTPRoute."""
    if spec.gateway_api:
        # Imported here: the Gateway API router reuses this module's Routes.
        from activities.canary.gatewayapi import GatewayApiRouter

        return GatewayApiRouter(spec, namespace, workflow_id)
    return IstioRouter(spec, namespace, workflow_id)
