"""Metric analysis against Prometheus, with Flagger's built-in Istio queries.

Every interval the ``canary.analyse`` activity runs the ``rollout`` hooks (load tests),
asks the ``rollback`` hooks whether a human wants out, and evaluates each metric: a PromQL
template rendered with the canary's variables, sent as an instant query through
``prometheus-api-client``, its single value compared with ``thresholdRange``.

"No data" is explicit: a Prometheus outage, an error answer, an empty result or a NaN
(``0/0`` when no requests were seen) all give :attr:`MetricStatus.NO_DATA`, never a pass;
what no data *means* (fail, hold, pass) is the metric's ``noData`` policy, applied by the
state machine.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from temporalio import activity
from urllib3.util.retry import Retry

from activities.canary import webhooks
from models.canary import (
    AnalysisResult,
    CanaryMetric,
    CanarySpec,
    CanaryStep,
    HookType,
    MetricResult,
    MetricStatus,
)
from models.operator import Target
from models.promql import MetricQuery, value_of
from service.settings import PrometheusSettings

#: Seconds a single query may take before it counts as no data.
QUERY_TIMEOUT = 5.0


def query_for(metric: CanaryMetric, spec: CanarySpec, target: Target) -> str:
    """The PromQL a metric sends for this canary (the watcher renders the same)."""
    return MetricQuery.of(metric, spec, target.namespace).promql()


def prometheus_url(query: MetricQuery) -> str:
    """The template's own address, else the ``prometheus`` section's url (``PROMETHEUS_URL``)."""
    return query.address or PrometheusSettings().url


def judge(metric: CanaryMetric, value: float | None, query: str, message: str) -> MetricResult:
    """Compare a value with the metric's range (both bounds inclusive)."""
    bounds = metric.bounds()
    result = MetricResult(
        name=metric.name,
        status=MetricStatus.NO_DATA,
        value=value,
        min=bounds.min,
        max=bounds.max,
        no_data=metric.no_data,
        query=query,
        message=message,
    )
    if value is None:
        return result
    low = bounds.min is not None and value < bounds.min
    high = bounds.max is not None and value > bounds.max
    status = MetricStatus.FAIL if low or high else MetricStatus.PASS
    why = f"below min {bounds.min:g}" if low else f"above max {bounds.max:g}" if high else ""
    return result.model_copy(update={"status": status, "message": why})


@functools.lru_cache(maxsize=32)
def _client(url: str) -> PrometheusConnect:
    """One client (and connection pool) per Prometheus URL.

    One quick retry only: the library's default backs off for seconds, and a slow "no
    data" would delay a rollback; the next interval asks again anyway.
    """
    retry = Retry(total=1, backoff_factor=0.05, status_forcelist=(502, 503, 504))
    return PrometheusConnect(url=url, disable_ssl=True, retry=retry, timeout=int(QUERY_TIMEOUT))


def _query(url: str, query: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _client(url).custom_query(query)
    return result


async def check(metric: CanaryMetric, spec: CanarySpec, target: Target) -> MetricResult:
    """Evaluate one metric now; every failure to get a value is "no data", never a pass."""
    wanted = MetricQuery.of(metric, spec, target.namespace)
    query, url = wanted.promql(), prometheus_url(wanted)
    try:
        result = await asyncio.to_thread(_query, url, query)
    except (requests.RequestException, PrometheusApiClientException, ValueError) as error:
        reason = f"Prometheus at {url} failed: {type(error).__name__}: {str(error)[:200]}"
        return judge(metric, None, query, reason)
    value = value_of(result)
    return judge(metric, value, query, "" if value is not None else "empty result")


@activity.defn(name="canary.analyse")
async def analyse(step: CanaryStep) -> AnalysisResult:
    """One analysis: rollout hooks, rollback hooks, then every metric (concurrently)."""
    hooks = await webhooks.run_hooks(step, HookType.ROLLOUT)
    rollback = await webhooks.rollback_requested(step)
    metrics = await asyncio.gather(
        *(check(m, step.spec, step.target) for m in step.spec.analysis.metrics)
    )
    return AnalysisResult(
        at=datetime.now(UTC),
        metrics=list(metrics),
        hooks=hooks + rollback,
        rollback_requested=bool(rollback),
    )
