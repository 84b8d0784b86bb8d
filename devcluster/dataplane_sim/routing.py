"""From a VirtualService route to the Deployments that would serve it, as Envoy would.

Why a module of its own: this is the part of Istio the simulator has to get right for the
metrics to mean anything (which route a request takes, which weight each destination has,
which pods a ``host`` + ``subset`` pair selects). Everything here is a pure function of plain
JSON mappings as the Kubernetes API returns them, so it is unit tested without a cluster.

Simplifications (also listed in the documentation): synthetic requests are ``GET <path>``
with the headers, cookies and query parameters of their class (see
:mod:`~devcluster.dataplane_sim.matching`); only Kubernetes Services are destinations (no
ServiceEntry); Deployments stand in for pods, selected by their pod-template labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from devcluster.dataplane_sim import matching
from devcluster.dataplane_sim.matching import string_match as string_match

#: Kubernetes cluster domain used to build service FQDNs.
DEFAULT_CLUSTER_DOMAIN: Final = "cluster.local"

#: The gateway name Istio uses for sidecar-to-sidecar traffic.
MESH_GATEWAY: Final = "mesh"

JsonObject = Mapping[str, Any]


@dataclass(frozen=True)
class ServiceHost:
    """A Kubernetes Service named by a route destination.

    Attributes:
        name: Service name.
        namespace: Service namespace.
        fqdn: ``name.namespace.svc.<cluster domain>``, Istio's ``destination_service``.
    """

    name: str
    namespace: str
    fqdn: str


def resolve_host(
    host: str, namespace: str, domain: str = DEFAULT_CLUSTER_DOMAIN
) -> ServiceHost | None:
    """Resolve a destination ``host`` the way the simulator looks Services up.

    ``name`` is relative to ``namespace`` (as Istio does for short names); ``name.ns``,
    ``name.ns.svc`` and ``name.ns.svc.<domain>`` name a Service in ``ns``. Real Istio takes
    ``name.ns`` literally (it only expands names without a dot); the simulator is lenient.

    Args:
        host: The ``host`` field as written.
        namespace: Namespace of the object that holds the field.
        domain: Cluster domain.

    Returns:
        The Service's identity, or ``None`` for wildcards and hosts outside the cluster.
    """
    text = host.strip().lower().rstrip(".")
    if not text or "*" in text:
        return None
    parts = text.split(".")
    suffix = ["svc", *domain.split(".")]
    if len(parts) == 1:
        name, ns = parts[0], namespace
    elif len(parts) == 2 or parts[2:] in (["svc"], suffix):
        name, ns = parts[0], parts[1]
    else:
        return None
    return ServiceHost(name=name, namespace=ns, fqdn=f"{name}.{ns}.svc.{domain}")


@dataclass(frozen=True)
class SyntheticRequest:
    """What every simulated request looks like to routing and authorization.

    Attributes:
        path: Request path.
        method: HTTP method.
        source_namespace: Namespace of the client workload.
        source_principal: SPIFFE identity of the client, without ``spiffe://``.
        source_labels: Pod labels of the client, when it is a known Deployment.
        gateways: Where the request enters: ``("mesh",)`` or the VirtualService's gateways.
        headers: Request headers, names lowercase (a ``cookie`` header holds the cookies).
        query: Query parameters.
        authority: The ``Host`` the client asks for (the VirtualService's first host).
    """

    path: str
    method: str = "GET"
    source_namespace: str = ""
    source_principal: str = ""
    source_labels: Mapping[str, str] | None = None
    gateways: tuple[str, ...] = (MESH_GATEWAY,)
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    authority: str = ""


def _match_request(match: JsonObject, request: SyntheticRequest) -> bool:
    """Evaluate one ``HTTPMatchRequest``; conditions the request cannot satisfy fail."""
    ignore_case = bool(match.get("ignoreUriCase"))
    for key, condition in match.items():
        if key in ("name", "ignoreUriCase", "port", "statPrefix"):
            continue  # ports are not modelled
        if key == "withoutHeaders":
            ok = matching.without_headers_match(condition, request.headers)
        elif key == "headers":
            ok = matching.headers_match(condition, request.headers)
        elif key == "queryParams":
            ok = matching.query_match(condition, request.query)
        elif key == "authority" and request.authority:
            ok = string_match(condition, request.authority)
        elif key == "uri":
            ok = string_match(condition, request.path, ignore_case)
        elif key == "method":
            ok = string_match(condition, request.method)
        elif key == "scheme":
            ok = string_match(condition, "http")
        elif key == "sourceNamespace":
            ok = condition == request.source_namespace
        elif key == "sourceLabels":
            labels = request.source_labels or {}
            ok = all(labels.get(k) == v for k, v in (condition or {}).items())
        elif key == "gateways":
            ok = bool(set(condition or ()) & set(request.gateways))
        else:  # no authority, or a key the simulator does not know
            ok = not condition
        if not ok:
            return False
    return True


def select_http_route(
    virtual_service: JsonObject, request: SyntheticRequest
) -> tuple[int, JsonObject] | None:
    """Return the first ``http`` route (index and body) whose ``match`` admits the request.

    A route without ``match`` admits everything, so for the usual canary VirtualService
    (one route, several weighted destinations) this is simply the first route.
    """
    routes: Sequence[JsonObject] = (virtual_service.get("spec") or {}).get("http") or []
    for index, route in enumerate(routes):
        matches = route.get("match") or []
        if not matches or any(_match_request(m, request) for m in matches):
            return index, route
    return None


@dataclass(frozen=True)
class RouteDestination:
    """One weighted destination of an http route.

    Attributes:
        host: ``destination.host`` as written.
        subset: ``destination.subset`` or ``None``.
        weight: Relative weight (the simulator normalizes by the sum).
    """

    host: str
    subset: str | None
    weight: float


def route_destinations(route: JsonObject) -> list[RouteDestination]:
    """Return the weighted destinations of an http route, read as Istio reads them.

    A single destination gets all traffic whatever its weight. With several, a missing weight
    counts as 0; if no weight is positive, the simulator splits evenly.
    """
    entries: Sequence[JsonObject] = route.get("route") or []
    found = []
    for entry in entries:
        destination = entry.get("destination") or {}
        host = destination.get("host")
        if not host:
            continue
        found.append(
            RouteDestination(
                host=str(host),
                subset=destination.get("subset") or None,
                weight=float(entry.get("weight") or 0),
            )
        )
    if len(found) == 1 or (found and all(d.weight <= 0 for d in found)):
        return [RouteDestination(d.host, d.subset, 1.0) for d in found]
    return found


def object_key(obj: JsonObject) -> tuple[str, str]:
    """Return ``(namespace, name)`` of a Kubernetes object."""
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def template_labels(deployment: JsonObject) -> Mapping[str, str]:
    """Return the pod-template labels of a Deployment (the labels its pods would carry)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every ``selector`` pair is present in ``labels``."""
    return all(labels.get(key) == value for key, value in selector.items())


class MeshIndex:
    """Lookups over one tick's objects: Services by FQDN, DestinationRules by host, workloads.

    Built once per tick in time linear in the number of objects, so that resolving a route
    costs a few dictionary lookups instead of scans.
    """

    def __init__(
        self,
        services: Sequence[JsonObject],
        destination_rules: Sequence[JsonObject],
        deployments: Sequence[JsonObject],
        domain: str = DEFAULT_CLUSTER_DOMAIN,
    ) -> None:
        """Index the objects.

        Args:
            services: Services as JSON mappings.
            destination_rules: DestinationRules as JSON mappings.
            deployments: Deployments as JSON mappings.
            domain: Cluster domain.
        """
        self.domain = domain
        self.services: dict[str, JsonObject] = {}
        for service in services:
            namespace, name = object_key(service)
            self.services[f"{name}.{namespace}.svc.{domain}"] = service
        # host FQDN -> [(rule namespace, rule)], in the order the API listed them
        self.rules: dict[str, list[tuple[str, JsonObject]]] = {}
        for rule in destination_rules:
            namespace, _ = object_key(rule)
            host = resolve_host(str((rule.get("spec") or {}).get("host") or ""), namespace, domain)
            if host:
                self.rules.setdefault(host.fqdn, []).append((namespace, rule))
        self.deployments: dict[tuple[str, str], JsonObject] = {}
        # (namespace, label key, label value) -> Deployments whose pods carry that label
        self._by_label: dict[tuple[str, str, str], list[JsonObject]] = {}
        for deployment in deployments:
            key = object_key(deployment)
            self.deployments[key] = deployment
            for label in template_labels(deployment).items():
                self._by_label.setdefault((key[0], *label), []).append(deployment)

    def destination_rule(self, fqdn: str, client_namespace: str) -> JsonObject | None:
        """Pick the DestinationRule for a host as Istio does.

        The client's namespace wins, then the Service's namespace, then any other namespace
        (Istio would only look at the root namespace; the simulator is lenient).
        """
        candidates = self.rules.get(fqdn) or []
        service_namespace = fqdn.split(".")[1]
        for wanted in (client_namespace, service_namespace):
            for namespace, rule in candidates:
                if namespace == wanted:
                    return rule
        return candidates[0][1] if candidates else None

    def endpoints(self, service: JsonObject, subset_labels: Mapping[str, str]) -> list[JsonObject]:
        """Deployments in the Service's namespace whose pods the Service + subset select.

        A Service without a selector selects nothing (its endpoints would be managed by hand).
        """
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            return []
        wanted = {**selector, **subset_labels}
        namespace, _ = object_key(service)
        # Start from the rarest label so a namespace with many workloads costs no scan.
        candidates = min(
            (self._by_label.get((namespace, k, v), []) for k, v in wanted.items()), key=len
        )
        return [d for d in candidates if labels_match(wanted, template_labels(d))]


def subset_labels(rule: JsonObject | None, subset: str) -> Mapping[str, str] | None:
    """Return a subset's labels from a DestinationRule, or ``None`` when it is not defined."""
    if rule is None:
        return None
    for entry in (rule.get("spec") or {}).get("subsets") or []:
        if entry.get("name") == subset:
            labels: Mapping[str, str] = entry.get("labels") or {}
            return labels
    return None
