"""The data-plane SIMULATOR: a stand-in for Envoy sidecars on the dev cluster.

Why: the dev cluster runs the real control plane and kwok's fake nodes, but no container
and no Envoy, so nothing would produce the Istio metrics that canary analysis reads.
:class:`DataPlaneSimulator` does, one *tick* at a time:

1. list VirtualServices, DestinationRules, AuthorizationPolicies, Services, Deployments and
   Gateway API HTTPRoutes (read as VirtualServices, :mod:`~devcluster.dataplane_sim.httproutes`);
2. read each Deployment's ready replicas from the status the real deployment controller
   writes (a Deployment without ready replicas answers 503);
3. generate ``rate x tick`` requests per VirtualService (or HTTPRoute) along its live weights
   (:mod:`~devcluster.dataplane_sim.traffic`) and add them to the exported counters.

Simulated time advances by ``tick`` seconds per tick. :meth:`DataPlaneSimulator.start` runs
ticks on a background thread, one per ``tick`` seconds of wall time, and serves ``/metrics``;
tests may instead call :meth:`DataPlaneSimulator.tick` themselves and never start the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final

from kubernetes import client, config

from devcluster.dataplane_sim.authz import DEFAULT_ROOT_NAMESPACE
from devcluster.dataplane_sim.cluster import ClusterAccess
from devcluster.dataplane_sim.httproutes import as_virtual_services
from devcluster.dataplane_sim.metrics import CONTENT_TYPE, IstioMetricStore
from devcluster.dataplane_sim.routing import DEFAULT_CLUSTER_DOMAIN, MeshIndex, object_key
from devcluster.dataplane_sim.traffic import TrafficGenerator, TrafficSettings

log = logging.getLogger(__name__)

#: Version reported by ``autopilot_sim_info``.
SIM_VERSION: Final = "1"

#: Distinct annotation problems remembered (each is logged once).
_MAX_REMEMBERED_PROBLEMS: Final = 10_000


@dataclass(frozen=True)
class SimConfig:
    """How the simulator runs.

    Attributes:
        rate: Requests per second per VirtualService (``sim.autopilot.dev/rate`` overrides).
        tick: Simulated seconds per tick, and wall seconds between background ticks.
        namespace: Only this namespace, or ``None`` for all namespaces.
        metrics_host: Address of the ``/metrics`` listener (loopback by default).
        metrics_port: Port of the ``/metrics`` listener; 0 picks a free one.
        cluster_domain: Kubernetes cluster domain.
        root_namespace: Istio root namespace (its AuthorizationPolicies apply everywhere).
    """

    rate: float = 10.0
    tick: float = 1.0
    namespace: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    root_namespace: str = DEFAULT_ROOT_NAMESPACE

    def __post_init__(self) -> None:
        """Refuse settings that cannot work."""
        if self.tick <= 0:
            raise ValueError("tick must be greater than 0 seconds")
        if self.rate < 0:
            raise ValueError("rate must not be negative")


@dataclass(frozen=True)
class TickReport:
    """What one tick did.

    Attributes:
        simulated_time: Simulated time at the start of the tick.
        virtual_services: VirtualServices seen.
        deployments: Deployments seen.
        requests: Requests generated (each counted once, not per reporter).
        wall_seconds: Wall-clock duration of the tick.
        problems: Annotation problems found (also logged, once each).
    """

    simulated_time: float
    virtual_services: int
    deployments: int
    requests: int
    wall_seconds: float
    problems: tuple[str, ...]


class DataPlaneSimulator:
    """Simulated Envoy for the dev cluster; see the module docstring."""

    def __init__(self, api_client: client.ApiClient, sim_config: SimConfig | None = None) -> None:
        """Create a simulator; nothing runs until :meth:`tick` or :meth:`start`.

        Args:
            api_client: A Kubernetes API client for the dev cluster.
            sim_config: Settings; defaults to :class:`SimConfig()`.
        """
        self.config = sim_config or SimConfig()
        self._cluster = ClusterAccess(api_client, self.config.namespace)
        self._traffic = TrafficGenerator(
            TrafficSettings(
                tick_seconds=self.config.tick,
                default_rate=self.config.rate,
                root_namespace=self.config.root_namespace,
            )
        )
        self.store = IstioMetricStore(version=SIM_VERSION)
        self._clock = 0.0
        self._tick_lock = threading.Lock()
        self._logged_problems: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str, sim_config: SimConfig | None = None
    ) -> DataPlaneSimulator:
        """Create a simulator for the cluster a kubeconfig file points at."""
        return cls(config.new_client_from_config(config_file=kubeconfig), sim_config)

    @property
    def simulated_time(self) -> float:
        """Simulated seconds elapsed (ticks x tick length)."""
        return self._clock

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` is served on, once :meth:`serve_metrics` ran."""
        return int(self._server.server_address[1]) if self._server else None

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port/metrics`` once serving."""
        port = self.metrics_port
        return None if port is None else f"http://{self.config.metrics_host}:{port}/metrics"

    def tick(self) -> TickReport:
        """Run one tick: read the cluster, generate traffic.

        Returns:
            What the tick did. Raises what the API client raises if the cluster is unreachable.
        """
        with self._tick_lock:
            started = time.perf_counter()
            now = self._clock
            problems: list[str] = []
            snapshot = self._cluster.snapshot()
            ready = {
                object_key(deployment): int(
                    (deployment.get("status") or {}).get("readyReplicas") or 0
                )
                for deployment in snapshot.deployments
            }
            index = MeshIndex(
                snapshot.services,
                snapshot.destination_rules,
                snapshot.deployments,
                self.config.cluster_domain,
            )
            batches = self._traffic.tick(
                [*snapshot.virtual_services, *as_virtual_services(snapshot.http_routes)],
                index,
                snapshot.authorization_policies,
                ready,
                problems,
            )
            self.store.add(batches)
            self.store.retain(
                (d["metadata"]["namespace"], d["metadata"]["name"]) for d in snapshot.deployments
            )
            # Every request has a source-side report; reached workloads add a destination one.
            requests = sum(b.requests for b in batches if b.labels[0] == "source")
            self._clock = now + self.config.tick
            elapsed = time.perf_counter() - started
            stats = self.store.stats
            stats.ticks += 1
            stats.simulated_seconds = self._clock
            stats.last_tick_seconds = elapsed
            stats.virtual_services = len(snapshot.virtual_services)
            stats.deployments = len(snapshot.deployments)
            self._log_new(problems)
            return TickReport(
                simulated_time=now,
                virtual_services=len(snapshot.virtual_services),
                deployments=len(snapshot.deployments),
                requests=requests,
                wall_seconds=elapsed,
                problems=tuple(problems),
            )

    def _log_new(self, problems: list[str]) -> None:
        for problem in problems:
            if problem not in self._logged_problems:
                if len(self._logged_problems) < _MAX_REMEMBERED_PROBLEMS:
                    self._logged_problems.add(problem)
                log.warning("%s", problem)

    def serve_metrics(self) -> int:
        """Start serving ``/metrics`` (idempotent); returns the port."""
        if self._server is None:
            self._server = ThreadingHTTPServer(
                (self.config.metrics_host, self.config.metrics_port), metrics_handler(self.store)
            )
            self._server.daemon_threads = True
            threading.Thread(
                target=self._server.serve_forever, name="dataplane-sim-metrics", daemon=True
            ).start()
            log.info("serving simulated Istio metrics on %s", self.metrics_url)
        return int(self._server.server_address[1])

    def run(self, stop: threading.Event) -> None:
        """Tick every ``tick`` wall seconds until ``stop`` is set (blocking).

        A failed tick is logged and counted, never fatal: the API server may be restarting.
        If ticks fall more than five behind (an overloaded machine), the missed ones are
        skipped rather than replayed in a burst, and the exported rates dip accordingly.
        """
        next_at = time.monotonic()
        failing = False
        while not stop.is_set():
            try:
                self.tick()
                if failing:
                    log.info("simulator ticks succeed again")
                failing = False
            except Exception as error:
                self.store.stats.errors += 1
                if failing:  # one traceback per outage, then one line per tick
                    log.warning("simulator tick failed again: %s", error)
                else:
                    log.exception("simulator tick failed; retrying every tick")
                failing = True
            next_at += self.config.tick
            delay = next_at - time.monotonic()
            if delay < -5 * self.config.tick:
                log.warning("simulator is %.1fs behind; skipping missed ticks", -delay)
                next_at = time.monotonic()
                delay = 0.0
            stop.wait(max(delay, 0.0))

    def start(self) -> None:
        """Serve ``/metrics`` and tick on a background thread until :meth:`stop`."""
        self.serve_metrics()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run, args=(self._stop,), name="dataplane-sim", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop ticking and serving; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DataPlaneSimulator:
        """Start on entering a ``with`` block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()


def metrics_handler(store: IstioMetricStore) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers ``GET /metrics`` with the store's text exposition."""

    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/", "/metrics"):
                self.send_error(404, "only /metrics is served here")
                return
            body = store.render()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes come every second: not one log line each."""

    return MetricsHandler
