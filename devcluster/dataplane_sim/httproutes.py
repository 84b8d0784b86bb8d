"""Gateway API HTTPRoutes, read as the VirtualServices they stand for.

Why a translation instead of a second traffic path: an HTTPRoute that splits by
``backendRefs`` weights is, to the data plane, the same thing as a VirtualService whose
route has weighted destinations. Turning each HTTPRoute into that VirtualService's JSON
lets the rest of the simulator (rates, annotations, endpoints, authorization, the Istio
metrics it reports) treat both kinds alike, so a canary routed with ``provider:
gatewayapi:v1`` is measured by the very same PromQL as one routed with Istio.

How a route maps (pure functions of the JSON the API server returns):

* ``parentRefs`` become the gateways: a Gateway ``ns/name`` (traffic then comes from the
  ingress gateway, as for a VirtualService bound to gateways), a Service (mesh, GAMMA)
  becomes ``mesh``; a route with no parent is attached to nothing and sends nothing;
* each rule becomes an http route, in order; its ``backendRefs`` (kind Service) become
  weighted destinations ``name.namespace`` on their port, a missing weight counting 1, as
  the Gateway API says; a backend of another kind names no Service (503 ``NC``);
* ``matches`` become Istio matches: ``path`` (``Exact``, ``PathPrefix`` by whole segments,
  ``RegularExpression``), ``method``, ``headers`` and ``queryParams``.

Simplifications: rules are tried in order (the Gateway API orders them by specificity);
filters (header changes, mirrors, redirects) and ``hostnames`` do not change the traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from devcluster.dataplane_sim.routing import MESH_GATEWAY, object_key

JsonObject = Mapping[str, Any]

#: The API group of Gateway API kinds.
GATEWAY_API_GROUP: Final = "gateway.networking.k8s.io"

#: Gateway API match types and the Istio ``StringMatch`` key they become.
_STRING_MATCH: Final = {"Exact": "exact", "RegularExpression": "regex"}


def _gateway(parent: JsonObject, namespace: str) -> str:
    """The Istio gateway name a ParentReference stands for (``mesh`` for a Service)."""
    if parent.get("kind") == "Service":
        return MESH_GATEWAY
    return f"{parent.get('namespace') or namespace}/{parent.get('name')}"


def _path_match(path: JsonObject) -> dict[str, str]:
    """A Gateway API path match as an Istio ``uri`` StringMatch."""
    kind = path.get("type") or "PathPrefix"
    value = str(path.get("value") or "/")
    if kind in _STRING_MATCH:
        return {_STRING_MATCH[kind]: value}
    prefix = value.rstrip("/")
    if not prefix:
        return {"prefix": "/"}
    # PathPrefix matches whole segments: /api matches /api and /api/v1, not /apis.
    return {"regex": f"{re.escape(prefix)}(/.*)?"}


def _named_matches(entries: Sequence[JsonObject]) -> dict[str, dict[str, str]]:
    """``headers`` or ``queryParams`` matches as Istio's ``{name: StringMatch}``."""
    return {
        str(entry.get("name")): {
            _STRING_MATCH.get(entry.get("type") or "Exact", "exact"): str(entry.get("value") or "")
        }
        for entry in entries
    }


def _match(match: JsonObject) -> dict[str, Any]:
    """One HTTPRouteMatch as an Istio HTTPMatchRequest."""
    found: dict[str, Any] = {}
    if match.get("path"):
        found["uri"] = _path_match(match["path"])
    if match.get("method"):
        found["method"] = {"exact": str(match["method"])}
    if match.get("headers"):
        found["headers"] = _named_matches(match["headers"])
    if match.get("queryParams"):
        found["queryParams"] = _named_matches(match["queryParams"])
    return found


def _destination(ref: JsonObject, namespace: str) -> dict[str, Any]:
    """One backendRef as a weighted Istio destination."""
    is_service = (ref.get("group") or "") == "" and (ref.get("kind") or "Service") == "Service"
    name = str(ref.get("name") or "")
    host = (
        f"{name}.{ref.get('namespace') or namespace}" if is_service else f"{ref.get('kind')}:{name}"
    )
    destination: dict[str, Any] = {"host": host}
    if ref.get("port"):
        destination["port"] = {"number": ref["port"]}
    return {"destination": destination, "weight": int(ref.get("weight", 1))}


def as_virtual_service(http_route: JsonObject) -> dict[str, Any] | None:
    """The VirtualService an HTTPRoute stands for, or ``None`` when it is attached to nothing.

    The metadata (uid, annotations such as ``sim.autopilot.dev/rate``) is the route's own,
    so the simulator's per-route settings and carried remainders work unchanged.
    """
    namespace, _ = object_key(http_route)
    spec = http_route.get("spec") or {}
    parents: Sequence[JsonObject] = spec.get("parentRefs") or []
    if not parents:
        return None
    gateways = list(dict.fromkeys(_gateway(parent, namespace) for parent in parents))
    http = []
    for rule in spec.get("rules") or []:
        route: dict[str, Any] = {
            "route": [_destination(ref, namespace) for ref in rule.get("backendRefs") or []]
        }
        matches = [_match(match) for match in rule.get("matches") or []]
        if matches:
            route["match"] = matches
        http.append(route)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": dict(http_route.get("metadata") or {}),
        "spec": {"hosts": list(spec.get("hostnames") or []), "gateways": gateways, "http": http},
    }


def as_virtual_services(http_routes: Iterable[JsonObject]) -> list[dict[str, Any]]:
    """Every HTTPRoute that is attached to something, as its VirtualService."""
    return [vs for route in http_routes if (vs := as_virtual_service(route)) is not None]
