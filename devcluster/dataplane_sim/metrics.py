"""Exposes the simulated traffic as Prometheus metrics with Istio's names and labels.

Why the store renders the text format itself instead of ``Counter``/``Histogram`` objects or a
``prometheus_client`` collector: the simulator adds whole batches (``n`` requests spread over
the buckets) per tick, which ``observe()`` could only do one request at a time; and at a
thousand services a scrape holds about 100,000 samples of 25 Istio labels each, which the
client library re-escapes and re-joins on every line (4 s per scrape, measured by
``bench/sim_scrape.py``, while Prometheus scrapes every second). A series' labels never change,
so each series renders its label text once, when it first appears, and a scrape only joins
pre-rendered strings and numbers.

Every simulator has its own store: several simulators (one per test) can live in a process
without sharing counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

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
#: ``Content-Type`` of the Prometheus text exposition format that :meth:`render` writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The ``le`` label of each duration bucket, as the Go client and Envoy write them.
_BOUNDS = (*tuple(floatToGoString(b) for b in ISTIO_DURATION_BUCKETS_MS), "+Inf")


@dataclass
class _Series:
    label_text: str
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


class IstioMetricStore:
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
                    series = self._series[batch.labels] = _Series(_label_text(batch.labels))
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

    def render(self) -> bytes:
        """The Prometheus text exposition of every series and the simulator's own gauges."""
        with self._lock:
            snapshot = [
                (s.label_text, s.requests, tuple(s.buckets), s.duration_sum_ms)
                for s in self._series.values()
            ]
        stats = self.stats
        lines = [
            f"# HELP {SIM_INFO} Always 1: these Istio metrics come from the Autopilot data-plane "
            "SIMULATOR, not from Envoy.\n",
            f"# TYPE {SIM_INFO} gauge\n",
            f'{SIM_INFO}{{simulated="true",component="dataplane-sim",'
            f"version={_quoted(self.version)}}} 1\n",
            *_scalar("autopilot_sim_ticks", "Ticks completed.", stats.ticks, counter=True),
            *_scalar(
                "autopilot_sim_simulated_seconds",
                "Simulated time elapsed.",
                stats.simulated_seconds,
            ),
            *_scalar(
                "autopilot_sim_last_tick_duration_seconds",
                "Wall-clock time the last tick took.",
                stats.last_tick_seconds,
            ),
            *_scalar(
                "autopilot_sim_virtual_services",
                "VirtualServices in scope.",
                stats.virtual_services,
            ),
            *_scalar("autopilot_sim_deployments", "Deployments in scope.", stats.deployments),
            *_scalar("autopilot_sim_tick_errors", "Failed ticks.", stats.errors, counter=True),
            f"# HELP {REQUESTS_TOTAL} Requests "
            "(simulated by the Autopilot data-plane simulator).\n",
            f"# TYPE {REQUESTS_TOTAL} counter\n",
        ]
        lines.extend(f"{REQUESTS_TOTAL}{{{text}}} {count}\n" for text, count, _, _ in snapshot)
        lines.append(
            f"# HELP {REQUEST_DURATION} Request duration in milliseconds (simulated).\n"
            f"# TYPE {REQUEST_DURATION} histogram\n"
        )
        bucket = f"{REQUEST_DURATION}_bucket{{"
        for text, count, buckets, duration_sum in snapshot:
            running = 0
            for bound, in_bucket in zip(_BOUNDS, buckets, strict=True):
                running += in_bucket
                lines.append(f'{bucket}{text},le="{bound}"}} {running}\n')
            lines.append(f"{REQUEST_DURATION}_count{{{text}}} {count}\n")
            lines.append(f"{REQUEST_DURATION}_sum{{{text}}} {floatToGoString(duration_sum)}\n")
        return "".join(lines).encode()


def _destination(labels: tuple[str, ...]) -> tuple[str, str]:
    """``(namespace, workload)`` a series reports on; an unreached one (``unknown``) by the
    namespace of the Service that was asked for."""
    if labels[_WORKLOAD] == "unknown":
        return labels[_SERVICE_NAMESPACE], "unknown"
    return labels[_WORKLOAD_NAMESPACE], labels[_WORKLOAD]


def _scalar(name: str, documentation: str, value: float, counter: bool = False) -> list[str]:
    kind = "counter" if counter else "gauge"
    sample = f"{name}_total" if counter else name
    return [
        f"# HELP {sample} {documentation}\n",
        f"# TYPE {sample} {kind}\n",
        f"{sample} {floatToGoString(value)}\n",
    ]


def _quoted(value: str) -> str:
    """A label value in the text format's quotes, with its backslashes, quotes and newlines
    escaped."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{escaped}"'


def _label_text(labels: tuple[str, ...]) -> str:
    """``name="value",...`` for a series' Istio labels, rendered once per series."""
    return ",".join(
        f"{name}={_quoted(value)}" for name, value in zip(ISTIO_LABELS, labels, strict=True)
    )
