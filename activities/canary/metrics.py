"""Metric analysis against Prometheus, with Flagger's built-in Istio queries.

Every interval the ``canary.analyse`` activity runs the ``rollout`` hooks (load tests),
asks the ``rollback`` hooks whether a human wants out, and evaluates each metric: a PromQL
template rendered with the canary's variables, sent as an instant query through
``prometheus-api-client``, its single value compared with ``thresholdRange``.

"No data" is explicit: a Prometheus outage, an error answer, an empty result or a NaN
(``0/0`` when no requests were seen) all give :attr:`MetricStatus.NO_DATA`, never a pass;
so does a value backed by fewer requests than the metric's ``minSampleCount`` (counted by a
second query, sent alongside, see :meth:`MetricQuery.sample_count`): a window of one request
says 100 % or 0 %, and neither is evidence;
what no data *means* (fail, hold, pass) is the metric's ``noData`` policy, applied by the
state machine.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from temporalio import activity

from activities.canary import judge as statistics
from activities.canary import webhooks
from activities.canary.templates import Templates, read_templates
from models.canary import (
    AnalysisResult,
    CanaryMetric,
    CanarySpec,
    CanaryStep,
    HookType,
    MetricResult,
    MetricStatus,
)
from models.durations import format_duration
from models.operator import Target
from models.promql import MetricQuery, TemplateMissing, template_resource, value_of
from service.prometheus import prometheus_for
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
        min_samples=metric.min_sample_count,
        dry_run=metric.dry_run,
    )
    if value is None:
        return result
    low = bounds.min is not None and value < bounds.min
    high = bounds.max is not None and value > bounds.max
    status = MetricStatus.FAIL if low or high else MetricStatus.PASS
    why = f"below min {bounds.min:g}" if low else f"above max {bounds.max:g}" if high else ""
    return result.model_copy(update={"status": status, "message": why})


def prometheus(url: str) -> PrometheusConnect:
    """The client of ``url``, from the one factory (:func:`service.prometheus.prometheus_for`)."""
    return prometheus_for(url, QUERY_TIMEOUT)


def _query(url: str, query: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = prometheus(url).custom_query(query)
    return result


#: What a failed query raises (each is "no data", never a pass).
QUERY_ERRORS = (requests.RequestException, PrometheusApiClientException, ValueError)


def _failed(url: str, error: Exception) -> str:
    return f"Prometheus at {url} failed: {type(error).__name__}: {str(error)[:200]}"


async def _instant(url: str, query: str) -> float | Exception | None:
    """The value of an instant query, None when empty, or the error it failed with."""
    try:
        return value_of(await asyncio.to_thread(_query, url, query))
    except QUERY_ERRORS as error:
        return error


def _unusable(metric: CanaryMetric, why: str) -> MetricResult:
    """A failed check: the metric's template is missing or cannot be rendered (as Flagger)."""
    return judge(metric, None, "", why).model_copy(update={"status": MetricStatus.FAIL})


async def check(
    metric: CanaryMetric,
    spec: CanarySpec,
    target: Target,
    templates: Templates | None = None,
) -> MetricResult:
    """Evaluate one metric now; every failure to get a value is "no data", never a pass.

    With ``minSampleCount`` above 0 the requests in the window are counted at the same time;
    fewer than that (or a count that fails) make the value no data, whatever it is. A
    ``MetricTemplate`` that is missing or does not render fails the check, with the reason.
    """
    templates = templates or Templates()
    resource = template_resource(metric, spec, target.namespace)
    if resource is not None and resource in templates.problems:
        return _unusable(metric, templates.problems[resource])
    try:
        wanted = MetricQuery.of(metric, spec, target.namespace, templates.found)
        query = wanted.promql()
    except (TemplateMissing, KeyError) as error:
        return _unusable(metric, f"{resource or 'template'}: {str(error).strip(chr(39))}")
    url = prometheus_url(wanted)
    counting = metric.min_sample_count > 0
    value, count = await asyncio.gather(
        _instant(url, query), _instant(url, wanted.sample_count()) if counting else _none()
    )
    if isinstance(value, Exception):
        return judge(metric, None, query, _failed(url, value))
    if value is None:
        return judge(metric, None, query, "empty result")
    result = judge(metric, value, query, "")
    if not counting:
        return result
    if isinstance(count, Exception):
        why = f"requests not counted: {_failed(url, count)}"
        return _too_few(result, None, why)
    samples = count or 0.0
    if samples < metric.min_sample_count:
        window = format_duration(metric.interval)
        why = f"{samples:.0f} requests in {window}, below minSampleCount {metric.min_sample_count}"
        return _too_few(result, samples, why)
    return result.model_copy(update={"samples": samples})


async def _none() -> None:
    return None


def _too_few(result: MetricResult, samples: float | None, why: str) -> MetricResult:
    """No data: the value is kept for humans, but it decides nothing."""
    update = {"status": MetricStatus.NO_DATA, "samples": samples, "message": why}
    return result.model_copy(update=update)


@activity.defn(name="canary.analyse")
async def analyse(step: CanaryStep) -> AnalysisResult:
    """One analysis: rollout hooks, rollback hooks, the metrics' MetricTemplate resources
    (read now, so an edited template counts at once), every metric, then the judge (if set)."""
    hooks = await webhooks.run_hooks(step, HookType.ROLLOUT)
    rollback = await webhooks.rollback_requested(step)
    templates = await read_templates(step.spec, step.target.namespace)
    metrics = await asyncio.gather(
        *(check(m, step.spec, step.target, templates) for m in step.spec.analysis.metrics)
    )
    verdict = await statistics.judge_analysis(step.spec, step.target, metrics, templates.found)
    return AnalysisResult(
        at=datetime.now(UTC),
        metrics=list(metrics),
        hooks=hooks + rollback,
        rollback_requested=bool(rollback),
        judge=verdict,
    )
