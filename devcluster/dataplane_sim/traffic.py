"""One tick of simulated Envoy traffic: requests per VirtualService, as Istio would report them.

Why this shape: Flagger-style analysis reads ``istio_requests_total`` and
``istio_request_duration_milliseconds`` by ``reporter``, ``destination_workload`` and
``response_code``. So the simulator decides, per tick, how many requests each VirtualService
sends, where its live route weights send them, which workload serves them and what each
answers, and emits :class:`Batch` records keyed by Istio's standard label set. Counting (not
sampling) goes through :class:`~devcluster.dataplane_sim.allocation.Apportioner`, so the
result is deterministic.

Per destination of the selected http route:

* unknown Service, or a ``subset`` its DestinationRule does not define: 503 ``NC``, reported
  by the source proxy only (the request never leaves it);
* no ready replicas: 503 ``UH`` ("no healthy upstream"), source proxy only;
* a workload whose AuthorizationPolicies deny the request: 403 from its sidecar;
* otherwise the workload answers ``error-code`` for ``error-rate`` of the requests and 200
  for the rest, with its latency distribution.

Requests that reach a workload are reported twice, ``reporter="destination"`` (mTLS) and
``reporter="source"``, like a pair of sidecars does. A request matching no http route gets a
404 ``NR`` from the source proxy. A route's ``mirror`` copies its requests to the mirror host,
whose sidecar reports them (``reporter="destination"`` only: the copy's answer is dropped).
A VirtualService's request mix (headers, cookies, query, affinity users) is sent by
:mod:`~devcluster.dataplane_sim.clients`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from devcluster.dataplane_sim import annotations as ann
from devcluster.dataplane_sim import clients, matching
from devcluster.dataplane_sim.allocation import Apportioner
from devcluster.dataplane_sim.authz import DEFAULT_ROOT_NAMESPACE, RequestAttributes, decide
from devcluster.dataplane_sim.latency import LOCAL_REPLY, LatencyModel, bucket_shares
from devcluster.dataplane_sim.routing import (
    MESH_GATEWAY,
    MeshIndex,
    SyntheticRequest,
    object_key,
    resolve_host,
    route_destinations,
    select_http_route,
    subset_labels,
    template_labels,
)

JsonObject = Mapping[str, Any]

#: Istio's standard metric labels, in the order :attr:`Batch.labels` holds their values.
ISTIO_LABELS: Final = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "destination_canonical_service",
    "destination_canonical_revision",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)

UNKNOWN: Final = "unknown"
#: Istio's default cluster ID, reported in ``source_cluster`` and ``destination_cluster``.
CLUSTER_ID: Final = "Kubernetes"
#: SPIFFE trust domain of workload identities.
TRUST_DOMAIN: Final = "cluster.local"
#: Workload that sends the requests of VirtualServices bound only to gateways.
INGRESS_GATEWAY: Final = "istio-ingressgateway"
#: Who reports a request that reaches a workload: both sidecars.
BOTH: Final = ("destination", "source")
#: Who reports a mirrored copy: only the mirror's sidecar (the client drops its answer).
MIRRORED: Final = ("destination",)


@dataclass(frozen=True)
class Workload:
    """The identity labels of one side of a request."""

    name: str
    namespace: str
    app: str
    version: str
    canonical_service: str
    canonical_revision: str
    principal: str

    @classmethod
    def of_deployment(cls, deployment: JsonObject) -> Workload:
        """Identity of a Deployment's pods, derived from labels the way Istio derives it."""
        namespace, name = object_key(deployment)
        labels = template_labels(deployment)
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        account = pod_spec.get("serviceAccountName") or "default"
        app = labels.get("app") or labels.get("app.kubernetes.io/name")
        version = labels.get("version") or labels.get("app.kubernetes.io/version")
        return cls(
            name=name,
            namespace=namespace,
            app=app or UNKNOWN,
            version=version or UNKNOWN,
            canonical_service=labels.get("service.istio.io/canonical-name") or app or name,
            canonical_revision=labels.get("service.istio.io/canonical-revision")
            or version
            or "latest",
            principal=f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}",
        )

    @classmethod
    def synthetic(cls, name: str, namespace: str) -> Workload:
        """Identity of a simulated client that has no Deployment."""
        return cls(
            name=name,
            namespace=namespace,
            app=name,
            version=UNKNOWN,
            canonical_service=name,
            canonical_revision="latest",
            principal=f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/default",
        )


#: Stand-in for a destination Envoy never reached.
UNKNOWN_WORKLOAD: Final = Workload(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)


@dataclass(frozen=True)
class ServiceLabels:
    """``destination_service*`` label values."""

    fqdn: str
    name: str
    namespace: str


UNKNOWN_SERVICE: Final = ServiceLabels(UNKNOWN, UNKNOWN, UNKNOWN)


@dataclass(frozen=True)
class Batch:
    """Requests of one tick that share every Istio label.

    Attributes:
        labels: Values for :data:`ISTIO_LABELS`, in order.
        requests: Number of requests.
        buckets: Requests per duration bucket (not cumulative), one more than the bounds.
        duration_sum_ms: Sum of their durations.
    """

    labels: tuple[str, ...]
    requests: int
    buckets: tuple[int, ...]
    duration_sum_ms: float


def _labels(
    reporter: str,
    source: Workload,
    destination: Workload,
    service: ServiceLabels,
    code: int,
    flags: str,
) -> tuple[str, ...]:
    return (
        reporter,
        source.name,
        source.namespace,
        source.principal,
        source.app,
        source.version,
        CLUSTER_ID,
        source.canonical_service,
        source.canonical_revision,
        destination.name,
        destination.namespace,
        destination.principal,
        destination.app,
        destination.version,
        service.fqdn,
        service.name,
        service.namespace,
        CLUSTER_ID if destination is not UNKNOWN_WORKLOAD else UNKNOWN,
        destination.canonical_service,
        destination.canonical_revision,
        "http",
        str(code),
        "",
        flags,
        "mutual_tls" if reporter == "destination" else UNKNOWN,
    )


@dataclass(frozen=True)
class TrafficSettings:
    """Simulator-wide settings the traffic generator needs.

    Attributes:
        tick_seconds: Simulated seconds per tick.
        default_rate: Requests per second per VirtualService without a ``rate`` annotation.
        root_namespace: Istio's root namespace.
    """

    tick_seconds: float = 1.0
    default_rate: float = 10.0
    root_namespace: str = DEFAULT_ROOT_NAMESPACE


class TrafficGenerator:
    """Turns one tick's objects into :class:`Batch` records.

    Holds only the :class:`Apportioner` remainders between ticks; everything else is read from
    the objects passed to :meth:`tick`, so weight or annotation changes show on the next tick.
    """

    def __init__(self, settings: TrafficSettings) -> None:
        """Create a generator.

        Args:
            settings: Rates, tick length and namespaces.
        """
        self.settings = settings
        self.apportioner = Apportioner()
        #: Users of request classes that keep cookies, per (VirtualService uid, class).
        self.populations: dict[tuple[str, int], matching.Population] = {}
        self.ticks = 0

    def tick(
        self,
        virtual_services: Sequence[JsonObject],
        index: MeshIndex,
        policies: Sequence[JsonObject],
        ready: Mapping[tuple[str, str], int],
        problems: list[str],
    ) -> list[Batch]:
        """Generate one tick of requests.

        Args:
            virtual_services: VirtualServices in scope.
            index: Services, DestinationRules and Deployments of this tick.
            policies: AuthorizationPolicies in scope.
            ready: Ready replicas per Deployment ``(namespace, name)``.
            problems: Receives messages about annotations that do not parse.

        Returns:
            The tick's batches (several may share labels; callers add them up).
        """
        self.ticks += 1
        run = _Tick(self, index, policies, ready, problems)
        for virtual_service in sorted(virtual_services, key=object_key):
            run.virtual_service(virtual_service)
        self.apportioner.forget_unused()
        self.populations = {k: v for k, v in self.populations.items() if k in run.populations}
        return run.batches


class _Tick:
    """The working state of one :meth:`TrafficGenerator.tick` call."""

    def __init__(
        self,
        generator: TrafficGenerator,
        index: MeshIndex,
        policies: Sequence[JsonObject],
        ready: Mapping[tuple[str, str], int],
        problems: list[str],
    ) -> None:
        self.settings = generator.settings
        self.apportioner = generator.apportioner
        self.index = index
        # Only policies in the workload's own and the root namespace can apply to it.
        self.policies: dict[str, list[JsonObject]] = {}
        for policy in policies:
            self.policies.setdefault(object_key(policy)[0], []).append(policy)
        self.ready = ready
        self.problems = problems
        self.batches: list[Batch] = []
        self._behaviours: dict[tuple[str, str], ann.WorkloadBehaviour] = {}
        self.now = generator.ticks * self.settings.tick_seconds  # simulated seconds
        self.known_populations = generator.populations
        self.populations: set[tuple[str, int]] = set()  # used this tick

    def behaviour(self, deployment: JsonObject) -> ann.WorkloadBehaviour:
        key = object_key(deployment)
        if key not in self._behaviours:
            found: list[str] = []
            self._behaviours[key] = ann.workload_behaviour(deployment, found)
            self.problems.extend(f"Deployment {'/'.join(key)}: {p}" for p in found)
        return self._behaviours[key]

    def emit(
        self,
        key: tuple[Any, ...],
        reporters: Sequence[str],
        source: Workload,
        destination: Workload,
        service: ServiceLabels,
        code: int,
        flags: str,
        count: int,
        latency: LatencyModel,
    ) -> None:
        if count <= 0:
            return
        shares = bucket_shares(latency)
        split = self.apportioner.split(("latency", *key), count, list(enumerate(shares)))
        buckets = tuple(split.get(i, 0) for i in range(len(shares)))
        duration = count * latency.mean
        for reporter in reporters:
            labels = _labels(reporter, source, destination, service, code, flags)
            self.batches.append(Batch(labels, count, buckets, duration))

    def local_reply(
        self,
        key: tuple[Any, ...],
        source: Workload,
        service: ServiceLabels,
        code: int,
        flags: str,
        count: int,
    ) -> None:
        """Requests the client's sidecar answers itself: no workload ever sees them."""
        self.emit(
            key, ["source"], source, UNKNOWN_WORKLOAD, service, code, flags, count, LOCAL_REPLY
        )

    def client(self, namespace: str, name: str) -> tuple[Workload, JsonObject | None]:
        """A client workload: a Deployment's identity, or a synthetic one."""
        deployment = self.index.deployments.get((namespace, name))
        if deployment is None:
            return Workload.synthetic(name, namespace), None
        return Workload.of_deployment(deployment), deployment

    def source_of(
        self, virtual_service: JsonObject, vs_key: str
    ) -> tuple[ann.RouteBehaviour, Workload, SyntheticRequest]:
        namespace, _ = object_key(virtual_service)
        gateways = tuple((virtual_service.get("spec") or {}).get("gateways") or (MESH_GATEWAY,))
        default_source = (
            ann.SourceRef(INGRESS_GATEWAY, self.settings.root_namespace)
            if MESH_GATEWAY not in gateways
            else ann.SourceRef(ann.DEFAULT_SOURCE_WORKLOAD)
        )
        found: list[str] = []
        behaviour = ann.route_behaviour(
            virtual_service, self.settings.default_rate, default_source, found
        )
        self.problems.extend(f"VirtualService {vs_key}: {p}" for p in found)
        source_namespace = behaviour.source.namespace or namespace
        source, deployment = self.client(source_namespace, behaviour.source.name)
        request = SyntheticRequest(
            path=behaviour.path,
            source_namespace=source_namespace,
            source_principal=source.principal.removeprefix("spiffe://"),
            source_labels=template_labels(deployment) if deployment is not None else None,
            gateways=gateways,
            authority=str(((virtual_service.get("spec") or {}).get("hosts") or [""])[0]),
        )
        return behaviour, source, request

    def virtual_service(self, virtual_service: JsonObject) -> None:
        namespace, name = object_key(virtual_service)
        uid = (virtual_service.get("metadata") or {}).get("uid") or f"{namespace}/{name}"
        vs_key = f"{namespace}/{name}"
        if not (virtual_service.get("spec") or {}).get("http"):
            return  # tcp/tls-only routes are not simulated
        behaviour, source, request = self.source_of(virtual_service, vs_key)
        total = self.apportioner.whole(("rate", uid), behaviour.rate * self.settings.tick_seconds)
        if behaviour.requests:
            clients.send_mix(self, virtual_service, uid, behaviour.requests, source, request, total)
            return
        self.send((uid,), virtual_service, request, source, total)

    def send(
        self,
        prefix: tuple[Any, ...],
        virtual_service: JsonObject,
        request: SyntheticRequest,
        source: Workload,
        total: int,
    ) -> tuple[JsonObject, dict[tuple[int, str, str | None], int]] | None:
        """Route ``total`` alike requests through a VirtualService (and its mirrors).

        Returns the route taken and the requests per destination ``(position, host,
        subset)``, or ``None`` when no route matched (404 ``NR``).
        """
        namespace, _ = object_key(virtual_service)
        selected = select_http_route(virtual_service, request)
        if selected is None:
            self.local_reply(("nr", *prefix), source, UNKNOWN_SERVICE, 404, "NR", total)
            return None
        route_index, route = selected
        destinations = route_destinations(route)
        split = self.apportioner.split(
            ("route", *prefix, route_index),
            total,
            [((i, d.host, d.subset), d.weight) for i, d in enumerate(destinations)],
        )
        for (position, host, subset), count in split.items():
            self.destination(
                (*prefix, route_index, position), namespace, host, subset, count, source, request
            )
        for number, mirror in enumerate(matching.mirrors_of(route)):
            key = ("mirror", *prefix, route_index, number)
            shares = [(True, mirror.percent), (False, 100.0 - mirror.percent)]
            copies = self.apportioner.split(key, total, shares).get(True, 0)
            self.destination(
                key, namespace, mirror.host, mirror.subset, copies, source, request, MIRRORED
            )
        return route, split

    def destination(
        self,
        key: tuple[Any, ...],
        client_namespace: str,
        host: str,
        subset: str | None,
        count: int,
        source: Workload,
        request: SyntheticRequest,
        reporters: Sequence[str] = BOTH,
    ) -> None:
        service_host = resolve_host(host, client_namespace, self.index.domain)
        service = self.index.services.get(service_host.fqdn) if service_host else None
        if "source" not in reporters and (service is None or count <= 0):
            return  # a mirrored copy that goes nowhere is reported by no one
        if service_host is None or service is None:
            labels = ServiceLabels(host, host.split(".")[0], UNKNOWN)
            self.local_reply(key, source, labels, 503, "NC", count)
            return
        service_labels = ServiceLabels(service_host.fqdn, service_host.name, service_host.namespace)
        extra: Mapping[str, str] = {}
        if subset is not None:
            rule = self.index.destination_rule(service_host.fqdn, client_namespace)
            found = subset_labels(rule, subset)
            if found is None:
                if "source" in reporters:
                    self.local_reply(key, source, service_labels, 503, "NC", count)
                return
            extra = found
        endpoints = [
            (object_key(d), d)
            for d in self.index.endpoints(service, extra)
            if self.ready.get(object_key(d), 0) > 0
        ]
        if not endpoints:
            if "source" in reporters:
                self.local_reply(key, source, service_labels, 503, "UH", count)
            return
        per_workload = self.apportioner.split(
            ("endpoints", *key), count, [(k, float(self.ready[k])) for k, _ in endpoints]
        )
        deployments = dict(endpoints)
        attrs = RequestAttributes(request=request, host=service_host.fqdn)
        for workload_key, served in per_workload.items():
            self.workload(
                key, deployments[workload_key], served, source, service_labels, attrs, reporters
            )

    def workload(
        self,
        key: tuple[Any, ...],
        deployment: JsonObject,
        count: int,
        source: Workload,
        service: ServiceLabels,
        attrs: RequestAttributes,
        reporters: Sequence[str] = BOTH,
    ) -> None:
        destination = Workload.of_deployment(deployment)
        key = (*key, destination.namespace, destination.name)
        both = list(reporters)
        namespaces = {destination.namespace, self.settings.root_namespace}
        decision = decide(
            [p for namespace in sorted(namespaces) for p in self.policies.get(namespace, [])],
            destination.namespace,
            template_labels(deployment),
            attrs,
            self.settings.root_namespace,
        )
        if not decision.allowed:
            self.emit(key, both, source, destination, service, 403, "-", count, LOCAL_REPLY)
            return
        behaviour = self.behaviour(deployment)
        outcomes = self.apportioner.split(
            ("outcome", *key),
            count,
            [(200, 1.0 - behaviour.error_rate), (behaviour.error_code, behaviour.error_rate)],
        )
        for code, served in outcomes.items():
            self.emit(
                (*key, code),
                both,
                source,
                destination,
                service,
                code,
                "-",
                served,
                behaviour.latency,
            )
