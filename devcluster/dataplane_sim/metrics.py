"""Exposes the simulated traffic as Prometheus metrics with Istio's names and labels.

Why a custom collector instead of ``Counter``/``Histogram`` objects: the simulator adds whole
batches (``n`` requests spread over the buckets) per tick, which the client library's
``observe()`` could only do one request at a time. The store keeps plain per-series totals and
renders them at scrape time, so a tick costs the number of series, not the number of requests.

Every registry the simulator builds is its own ``CollectorRegistry``: several simulators (one
per test) can live in a process without sharing counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from devcluster.dataplane_sim.latency import ISTIO_DURATION_BUCKETS_MS
from devcluster.dataplane_sim.traffic import ISTIO_LABELS, Batch

_WORKLOAD = ISTIO_LABELS.index("destination_workload")
_WORKLOAD_NAMESPACE = ISTIO_LABELS.index("destination_workload_namespace")
_SERVICE_NAMESPACE = ISTIO_LABELS.index("destination_service_namespace")
#: Ticks a destination may be missing from the cluster before its series are forgotten: one
#: failed or partial read must not reset a live workload's counters.
FORGET_AFTER_TICKS = 3

REQUESTS_TOTAL = "istio_requests_total"
REQUEST_DURATION = "istio_request_duration_milliseconds"
SIM_INFO = "autopilot_sim_info"


@dataclass
class _Series:
    requests: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(ISTIO_DURATION_BUCKETS_MS) + 1))
    duration_sum_ms: float = 0.0


@dataclass
class TickStats:
    """What the simulator itself reports about its ticks."""

    ticks: int = 0
    simulated_seconds: float = 0.0
    last_tick_seconds: float = 0.0
    virtual_services: int = 0
    deployments: int = 0
    errors: int = 0


class IstioMetricStore(Collector):
    """Cumulative per-series request counts and duration histograms, safe across threads."""

    def __init__(self, version: str = "dev") -> None:
        """Create an empty store.

        Args:
            version: Reported in ``autopilot_sim_info``.
        """
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], _Series] = {}
        self._missing: dict[tuple[str, str], int] = {}
        self.stats = TickStats()
        self.version = version

    def add(self, batches: Iterable[Batch]) -> int:
        """Add a tick's batches; returns the number of requests added."""
        added = 0
        with self._lock:
            for batch in batches:
                series = self._series.get(batch.labels)
                if series is None:
                    series = self._series[batch.labels] = _Series()
                series.requests += batch.requests
                for index, count in enumerate(batch.buckets):
                    series.buckets[index] += count
                series.duration_sum_ms += batch.duration_sum_ms
                added += batch.requests
        return added

    def retain(self, live: Iterable[tuple[str, str]], after: int = FORGET_AFTER_TICKS) -> int:
        """Forget the series of destinations that have left the cluster; return how many.

        Why: a session of tests creates and deletes hundreds of apps. Kept for ever, their
        series grew ``/metrics`` to megabytes that took seconds to serve, Prometheus missed
        scrapes, and healthy canaries were rolled back on no data. Envoy forgets them too:
        a deleted workload's sidecars are gone with their counters.

        Args:
            live: ``(namespace, name)`` of every Deployment in the cluster now.
            after: Consecutive calls a destination must be missing before it is forgotten.
        """
        alive = set(live)
        namespaces = {namespace for namespace, _ in alive}

        def is_live(destination: tuple[str, str]) -> bool:
            namespace, workload = destination
            return namespace in namespaces if workload == "unknown" else destination in alive

        with self._lock:
            destinations = {_destination(labels) for labels in self._series}
            self._missing = {
                destination: self._missing.get(destination, 0) + 1
                for destination in destinations
                if not is_live(destination)
            }
            doomed = {key for key, count in self._missing.items() if count >= after}
            forgotten = [labels for labels in self._series if _destination(labels) in doomed]
            for labels in forgotten:
                del self._series[labels]
            for key in doomed:
                del self._missing[key]
            return len(forgotten)

    def requests(self, **match: str) -> int:
        """Total requests over the series whose labels equal ``match``.

        Args:
            **match: Label name to value, e.g. ``reporter="destination"``.

        Returns:
            The sum of ``istio_requests_total`` over the matching series.
        """
        positions = {ISTIO_LABELS.index(name): value for name, value in match.items()}
        with self._lock:
            return sum(
                series.requests
                for labels, series in self._series.items()
                if all(labels[i] == v for i, v in positions.items())
            )

    def collect(self) -> Iterator[Metric]:
        """Render the metrics (called by the registry at scrape time)."""
        info = GaugeMetricFamily(
            SIM_INFO,
            "Always 1: these Istio metrics come from the Autopilot data-plane SIMULATOR, "
            "not from Envoy.",
            labels=["simulated", "component", "version"],
        )
        info.add_metric(["true", "dataplane-sim", self.version], 1)
        yield info
        stats = self.stats
        yield _scalar("autopilot_sim_ticks", "Ticks completed.", stats.ticks, counter=True)
        yield _scalar(
            "autopilot_sim_simulated_seconds", "Simulated time elapsed.", stats.simulated_seconds
        )
        yield _scalar(
            "autopilot_sim_last_tick_duration_seconds",
            "Wall-clock time the last tick took.",
            stats.last_tick_seconds,
        )
        yield _scalar(
            "autopilot_sim_virtual_services", "VirtualServices in scope.", stats.virtual_services
        )
        yield _scalar("autopilot_sim_deployments", "Deployments in scope.", stats.deployments)
        yield _scalar("autopilot_sim_tick_errors", "Failed ticks.", stats.errors, counter=True)

        requests = CounterMetricFamily(
            REQUESTS_TOTAL,
            "Requests (simulated by the Autopilot data-plane simulator).",
            labels=ISTIO_LABELS,
        )
        durations = HistogramMetricFamily(
            REQUEST_DURATION,
            "Request duration in milliseconds (simulated).",
            labels=ISTIO_LABELS,
        )
        bounds = [floatToGoString(b) for b in ISTIO_DURATION_BUCKETS_MS] + ["+Inf"]
        with self._lock:
            snapshot = [
                (labels, s.requests, list(s.buckets), s.duration_sum_ms)
                for labels, s in self._series.items()
            ]
        for labels, count, buckets, duration_sum in snapshot:
            requests.add_metric(list(labels), count)
            cumulative, running = [], 0
            for bound, bucket in zip(bounds, buckets, strict=True):
                running += bucket
                cumulative.append((bound, running))
            durations.add_metric(list(labels), cumulative, duration_sum)
        yield requests
        yield durations


def _destination(labels: tuple[str, ...]) -> tuple[str, str]:
    """``(namespace, workload)`` a series reports on; an unreached one (``unknown``) by the
    namespace of the Service that was asked for."""
    if labels[_WORKLOAD] == "unknown":
        return labels[_SERVICE_NAMESPACE], "unknown"
    return labels[_WORKLOAD_NAMESPACE], labels[_WORKLOAD]


def _scalar(name: str, documentation: str, value: float, counter: bool = False) -> Metric:
    family: Metric
    if counter:
        family = CounterMetricFamily(name, documentation, value=value)
    else:
        family = GaugeMetricFamily(name, documentation, value=value)
    return family


def new_registry(store: IstioMetricStore) -> CollectorRegistry:
    """A fresh registry holding only the simulator's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    return registry
