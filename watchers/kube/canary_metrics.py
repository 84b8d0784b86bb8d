"""The canary controller's metrics, with Flagger's meanings under the ``autopilot_`` prefix.

* ``autopilot_canary_status`` {name, namespace} (``flagger_canary_status``): 0 while
  progressing, 2 once failed, 1 in every other phase (succeeded, waiting, ...);
* ``autopilot_canary_weight`` {workload, namespace} (``flagger_canary_weight``): the
  VirtualService's weight of ``<name>-primary`` and of ``<name>``;
* ``autopilot_canary_duration_seconds`` {name, namespace} (histogram,
  ``flagger_canary_duration_seconds``): seconds each analysis took;
* ``autopilot_canary_total`` {namespace} (``flagger_canary_total``): Canary objects;
* ``autopilot_canary_metric_analysis`` {name, namespace, metric}
  (``flagger_canary_metric_analysis``): each metric's value at the last analysis;
* ``autopilot_info`` {version, mesh_provider} (``flagger_info``): 1.

``name`` is the target Deployment's name, as in Flagger, so a Flagger dashboard needs only
the prefix changed.

Why they are computed by the status mirror, not by the workers: a rollout's activities run
on whichever worker process picks them up, so a gauge set by an activity would be right in
one process and stale in the others, and a counter would be split among them. The mirror
runs in one process only (the watchers' leader) and reads each workflow's own status (the
durable state, whoever ran its activities), so every series here has one writer whatever
the number of workers. When leadership moves, the old leader drops its per-canary series
and the new one shows them from its first sync; only the histogram is cumulative, and each
leader adds to it only the analyses that ended after its term began.
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.operator import OperatorStatus, TransitionRecord
from watchers.kube.index import CanaryIndex
from watchers.kube.objects import CanaryObject, Key

#: ``autopilot_canary_status`` values (Flagger's).
PROGRESSING, SUCCEEDED, FAILED = 0, 1, 2
#: The state whose time is one analysis.
ANALYSING = "Analysing"
#: Seconds an analysis may take: a few Prometheus queries and hooks, up to hooks that time out.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: The one mesh provider (``autopilot_info``'s ``mesh_provider``).
MESH_PROVIDER = "istio"

STATUS = "autopilot_canary_status"
WEIGHT = "autopilot_canary_weight"
DURATION = "autopilot_canary_duration_seconds"
TOTAL = "autopilot_canary_total"
METRIC_ANALYSIS = "autopilot_canary_metric_analysis"
INFO = "autopilot_info"
#: Every metric name exported here (the Grafana dashboard may use these only).
NAMES = (STATUS, WEIGHT, DURATION, TOTAL, METRIC_ANALYSIS, INFO)


def version() -> str:
    """The installed version of Autopilot, or ``unknown`` when run from a checkout."""
    try:
        return importlib.metadata.version("autopilot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def status_value(phase: str) -> int:
    """Flagger's rule: 0 while progressing, 2 once failed, 1 for every other phase."""
    if phase == "Progressing":
        return PROGRESSING
    return FAILED if phase == "Failed" else SUCCEEDED


@dataclass(frozen=True)
class CanaryView:
    """What a scrape shows of one Canary: its phase, its weights, its last analysis."""

    namespace: str
    target: str
    status: int
    canary_weight: int
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        canary: CanaryObject,
        fields: Mapping[str, Any],
        status: OperatorStatus | None,
        before: CanaryView | None = None,
    ) -> CanaryView:
        """The view from the mirrored status ``fields`` and, when it answered, the status.

        The weight is the last one written to the VirtualService (``applied_weights``), as
        Flagger reports the route's weight, not the one the machine is heading for.
        """
        data = status.data if status is not None else {}
        applied = data.get("applied_weights") or []
        weight = applied[-1] if applied else fields.get("canaryWeight") or 0
        metrics = dict(before.metrics) if before is not None else {}
        if status is not None:
            analysis = data.get("last_analysis") or {}
            metrics = {
                str(m["name"]): float(m["value"])
                for m in analysis.get("metrics") or []
                if m.get("value") is not None
            }
        return cls(
            namespace=canary.namespace,
            target=canary.target_name,
            status=status_value(str(fields.get("phase") or "")),
            canary_weight=int(weight),
            metrics=metrics,
        )


def analyses(transitions: Iterable[TransitionRecord]) -> Iterator[tuple[datetime, float]]:
    """``(ended at, seconds)`` of every analysis the transitions show, entry to exit."""
    entered: datetime | None = None
    for record in transitions:
        if record.source == record.target:
            continue  # handled without leaving the state
        if record.source == ANALYSING and entered is not None:
            yield record.at, (record.at - entered).total_seconds()
        entered = record.at if record.target == ANALYSING else None


class CanaryMetrics(Collector):
    """The canary series of one registry; fed by the status mirror of the current term.

    Use :meth:`for_registry` rather than the constructor, so every term (and the tests)
    share the one set of series of a registry.
    """

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, CanaryMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            DURATION,
            "Seconds spent performing one canary analysis.",
            ["name", "namespace"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._index: CanaryIndex | None = None
        self._views: dict[Key, CanaryView] = {}
        self._since: datetime | None = None
        self._counted: dict[str, datetime] = {}
        self._version = version()
        registry.register(self)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> CanaryMetrics:
        """The metrics registered in ``registry``, created on first use."""
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics

    # -- fed by the status mirror -------------------------------------------------

    def lead(self, index: CanaryIndex, now: datetime | None = None) -> None:
        """A term begins: show the Canaries of ``index``; count analyses ending from now."""
        self._index = index
        self._views.clear()
        self._since = now or datetime.now(UTC)

    def resign(self, index: CanaryIndex) -> None:
        """The term of ``index`` ends: another replica shows the canaries now (the histogram
        stays). A later term already begun in this process (tests run several) is kept."""
        if self._index is not index:
            return
        self._index = None
        self._views.clear()
        self._since = None

    def observe(
        self, canary: CanaryObject, fields: Mapping[str, Any], status: OperatorStatus | None
    ) -> None:
        """Take what the mirror just wrote for ``canary`` (and its workflow's status)."""
        if self._since is None:
            return
        self._views[canary.key] = CanaryView.of(canary, fields, status, self._views.get(canary.key))
        if status is None:
            return
        workflow = status.workflow_id
        counted = max(self._since, self._counted.get(workflow, self._since))
        for ended, seconds in analyses(status.transitions):
            if ended > counted:
                self.duration.labels(canary.target_name, canary.namespace).observe(seconds)
                self._counted[workflow] = max(ended, self._counted.get(workflow, ended))

    # -- read at every scrape -----------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        """The gauge families (registering must not call :meth:`collect`)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Every gauge, from the views of the Canaries the current term knows."""
        status, weight, total, analysis, info = self._families()
        info.add_metric([self._version, MESH_PROVIDER], 1)
        index = self._index
        if index is not None:
            per_namespace: dict[str, int] = {}
            for known in index:
                per_namespace[known.namespace] = per_namespace.get(known.namespace, 0) + 1
                view = self._views.get(known.key)
                if view is None:
                    continue
                status.add_metric([view.target, view.namespace], view.status)
                primary = f"{view.target}-primary"
                weight.add_metric([primary, view.namespace], 100 - view.canary_weight)
                weight.add_metric([view.target, view.namespace], view.canary_weight)
                for metric, value in sorted(view.metrics.items()):
                    analysis.add_metric([view.target, view.namespace, metric], value)
            for namespace, count in sorted(per_namespace.items()):
                total.add_metric([namespace], count)
        yield from (status, weight, total, analysis, info)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                STATUS,
                "Last canary analysis result: 0 progressing, 1 succeeded, 2 failed.",
                labels=["name", "namespace"],
            ),
            GaugeMetricFamily(
                WEIGHT,
                "The VirtualService destination weight of the primary and of the canary.",
                labels=["workload", "namespace"],
            ),
            GaugeMetricFamily(TOTAL, "Canary objects, per namespace.", labels=["namespace"]),
            GaugeMetricFamily(
                METRIC_ANALYSIS,
                "Each metric's value at the last canary analysis.",
                labels=["name", "namespace", "metric"],
            ),
            GaugeMetricFamily(
                INFO, "Autopilot's version and mesh provider.", labels=["version", "mesh_provider"]
            ),
        )
