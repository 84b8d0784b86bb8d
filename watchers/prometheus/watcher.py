"""The Prometheus watcher: every interval, sample each active rollout's metrics and signal them.

What "active" means: a ``Canary`` annotated ``autopilot.dev/metric-samples: "true"`` (opt-in:
the workflow's ``canary.analyse`` activity evaluates every metric at each interval anyway;
the samples only let it roll back *between* analyses), whose workflow is running and, per
Temporal visibility, in a state where the machine acts on samples
(:data:`~models.canary_watch.METRIC_SAMPLE_STATES`).

One tick:

1. evaluation time ``at`` = the interval boundary (``floor(now / interval) * interval``), so
   two replicas, or a restarted one, evaluate the same instants and produce the same
   event IDs (``prometheus:<metric>:<at>``): the workflow drops the repeat;
2. :func:`~watchers.prometheus.queries.plan` - one query per template in use;
3. every query is an instant query at ``at`` through ``prometheus-api-client``; an error, a
   timeout, an outage, a missing series or a NaN becomes ``value: null`` - an explicit
   "no data" sample, never silence;
4. the samples (``MetricSample``: name, value, ``at``) are signalled to their workflows
   (signal only: a finished rollout is not restarted by a sample). The machine ignores a
   sample older than its current weight, so a late one cannot judge the wrong step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from models.canary import CanarySpecError, MetricSample, load_canary_spec
from models.canary_watch import METRIC_SAMPLE_STATES
from models.operator import EventEnvelope, Target
from service.prometheus import prometheus_for
from service.settings import WatchersSettings
from watchers.delivery import Delivery, DeliveryRequest, Outcome
from watchers.kube.index import CanaryIndex
from watchers.kube.objects import OPERATOR
from watchers.prometheus.queries import PlannedQuery, Wanted, plan, wanted_metrics
from watchers.ticks import at_interval_boundaries
from watchers.visibility import WorkflowDirectory

logger = logging.getLogger(__name__)

#: ``EventEnvelope.source`` of every sample.
SOURCE = "prometheus"
#: Signals sent at once; the rest wait their turn.
DELIVERY_CHUNK = 200


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    at: datetime
    targets: int
    queries: int
    samples: int
    no_data: int
    delivered: int
    failed: int
    seconds: float


class PrometheusMetrics:
    """Counters of the Prometheus watcher, one set per registry (see :meth:`for_registry`)."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, PrometheusMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> PrometheusMetrics:
        """The counters registered in ``registry`` (the global one by default)."""
        registry = REGISTRY if registry is None else registry
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queries = Counter(
            "autopilot_prometheus_queries",
            "Instant queries sent by the Prometheus watcher, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.samples = Counter(
            "autopilot_metric_samples",
            "Metric samples signalled to workflows, by kind (value or no_data).",
            ["kind"],
            registry=registry,
        )


class PrometheusWatcher:
    """Samples the metrics of every active rollout, one query per template per interval.

    Args:
        settings: the Prometheus URL and the sampling interval.
        delivery: signals the samples.
        index: the Canaries (from the Kubernetes watcher).
        directory: which canary workflows run and in which state.
        registry: where the counters live; the global registry by default.
    """

    def __init__(
        self,
        settings: WatchersSettings,
        delivery: Delivery,
        index: CanaryIndex,
        directory: WorkflowDirectory,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.index = index
        self.directory = directory
        self.metrics = PrometheusMetrics.for_registry(registry)
        #: Queries sent since start (all ticks), for tests and benchmarks.
        self.queries_sent = 0
        self.last: TickReport | None = None

    # ------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Tick at every interval boundary until ``stop`` is set."""

        async def tick(at: datetime) -> None:
            self.last = await self.tick(at)

        interval = self.settings.sample_interval_s
        await at_interval_boundaries(interval, stop, tick, "Prometheus sampling")

    async def tick(self, at: datetime) -> TickReport:
        """Sample every active rollout at ``at`` and signal the samples."""
        started = time.monotonic()
        await self.directory.ensure_fresh(self.settings.status_interval_s)
        wanted, targets = self.active()
        queries = plan(wanted)
        answers = await asyncio.gather(*(self._ask(query, at) for query in queries))
        requests_: list[DeliveryRequest] = []
        no_data = 0
        for values in answers:
            for item, value in values.items():
                no_data += value is None
                requests_.append(self._request(item, value, at))
        self.metrics.samples.labels("no_data").inc(no_data)
        self.metrics.samples.labels("value").inc(len(requests_) - no_data)
        delivered = failed = 0
        for start in range(0, len(requests_), DELIVERY_CHUNK):
            results = await self.delivery.deliver_many(requests_[start : start + DELIVERY_CHUNK])
            delivered += sum(r.outcome is Outcome.DELIVERED for r in results)
            failed += sum(r.outcome is Outcome.FAILED for r in results)
        report = TickReport(
            at=at,
            targets=targets,
            queries=len(queries),
            samples=len(requests_),
            no_data=no_data,
            delivered=delivered,
            failed=failed,
            seconds=time.monotonic() - started,
        )
        logger.debug("tick %s", report)
        return report

    def active(self) -> tuple[list[Wanted], int]:
        """The metrics to sample now, and the number of rollouts they belong to."""
        wanted: list[Wanted] = []
        targets = 0
        for canary in self.index:
            if not canary.wants_metric_samples or canary.deleting:
                continue
            summary = self.directory.get(canary.workflow_id)
            if summary is None or not summary.running or summary.state not in METRIC_SAMPLE_STATES:
                continue
            try:
                spec = load_canary_spec(canary.spec)
            except CanarySpecError:
                continue
            metrics = wanted_metrics(canary.workflow_id, canary.namespace, spec)
            if metrics:
                targets += 1
                wanted.extend(metrics)
        return wanted, targets

    async def _ask(self, query: PlannedQuery, at: datetime) -> dict[Wanted, float | None]:
        url = query.address or self.settings.prometheus_url
        self.queries_sent += 1
        try:
            result = await asyncio.to_thread(self._query, url, query.promql, at)
        except (requests.RequestException, PrometheusApiClientException, ValueError) as error:
            self.metrics.queries.labels("error").inc()
            logger.warning("query to %s failed, sending no data: %s", url, error)
            return dict.fromkeys(query.members)
        self.metrics.queries.labels("ok").inc()
        return query.fan_out(result)

    def _query(self, url: str, promql: str, at: datetime) -> list[dict[str, Any]]:
        prometheus = prometheus_for(url, self.settings.query_timeout_s)
        result: list[dict[str, Any]] = prometheus.custom_query(
            promql, params={"time": f"{at.timestamp():.3f}"}
        )
        return result

    def _request(self, item: Wanted, value: float | None, at: datetime) -> DeliveryRequest:
        sample = MetricSample(name=item.name, value=value, at=at)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        envelope = EventEnvelope(
            id=f"prometheus:{item.name}:{stamp}",
            type=MetricSample.type_name(),
            payload=sample.model_dump(mode="json"),
            source=SOURCE,
            observed_at=datetime.now(UTC),
        )
        target = Target(namespace=item.namespace, name=item.target)
        return DeliveryRequest(OPERATOR, target, envelope, None)


def summarise(reports: Sequence[TickReport]) -> dict[str, float]:
    """Mean queries, samples and seconds per tick (for the benchmark)."""
    if not reports:
        return {"ticks": 0}
    count = len(reports)
    return {
        "ticks": count,
        "queries_per_tick": sum(r.queries for r in reports) / count,
        "samples_per_tick": sum(r.samples for r in reports) / count,
        "seconds_per_tick": sum(r.seconds for r in reports) / count,
    }
