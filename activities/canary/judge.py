"""The statistical judge: each metric of the canary against the primary's, over the interval.

Why here, in the analysis activity: the samples come from Prometheus (range queries, I/O)
and the test is scipy's, neither of which belongs in a workflow; the workflow only reads the
verdict in :class:`models.canary.AnalysisResult` (``models/judge.py`` says what it means).

For every metric both sides are asked the same PromQL (:meth:`MetricQuery.for_primary` is the
baseline) over ``[now - interval, now]`` in ``analysis.judge.points`` steps. A two-sided
Mann-Whitney U test says whether they differ (rank-based: no normality assumed, robust to a
spike), the Hodges-Lehmann estimator (the median of every canary-primary difference) says by
how much, and the metric's direction and allowed ratio say whether that is bad.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from activities.canary import metrics
from models.canary import CanaryMetric, CanarySpec, MetricResult, MetricStatus
from models.durations import format_duration
from models.judge import (
    MAX_JUDGE_POINTS,
    Classification,
    Direction,
    JudgeSpec,
    JudgeVerdict,
    MetricComparison,
    weigh,
)
from models.metric_templates import MetricTemplateSpec
from models.operator import Target
from models.promql import MetricQuery, TemplateMissing, series_values


def compare(
    metric: CanaryMetric, canary: Sequence[float], primary: Sequence[float], spec: JudgeSpec
) -> MetricComparison:
    """Classify one metric from both sides' samples (pure: no I/O, no clock)."""
    base = MetricComparison(
        name=metric.name,
        classification=Classification.NO_DATA,
        direction=metric.direction,
        canary_points=len(canary),
        primary_points=len(primary),
        weight=metric.judge.weight,
        critical=metric.judge.critical,
        dry_run=metric.dry_run,
        no_data=metric.no_data.value,
    )
    if len(canary) < spec.min_points or len(primary) < spec.min_points:
        why = (
            f"{len(canary)} canary and {len(primary)} primary points, "
            f"fewer than minPoints {spec.min_points}"
        )
        return base.model_copy(update={"message": why})
    ours, theirs = np.asarray(canary, dtype=float), np.asarray(primary, dtype=float)
    shift = float(np.median(np.subtract.outer(ours, theirs)))
    primary_median = float(np.median(theirs))
    p_value = _p_value(ours, theirs)
    ratio = _ratio(primary_median, shift)
    significant = p_value < spec.significance
    high = significant and shift > 0 and ratio > metric.judge.allowed_increase
    low = significant and shift < 0 and ratio < metric.judge.allowed_decrease
    classification = Classification.PASS
    if high and metric.direction in (Direction.INCREASE, Direction.EITHER):
        classification = Classification.HIGH
    elif low and metric.direction in (Direction.DECREASE, Direction.EITHER):
        classification = Classification.LOW
    return base.model_copy(
        update={
            "classification": classification,
            "canary_median": float(np.median(ours)),
            "primary_median": primary_median,
            "shift": shift,
            "ratio": ratio,
            "p_value": p_value,
        }
    )


def _p_value(canary: np.ndarray[Any, Any], primary: np.ndarray[Any, Any]) -> float:
    """Two-sided Mann-Whitney U; 1 when every sample is the same value (no evidence of a change)."""
    if np.all(canary == canary[0]) and np.all(primary == canary[0]):
        return 1.0
    # Imported here: scipy.stats takes more than a second to import, which every worker
    # start (and so every crash) would pay before its first poll, judge or not.
    from scipy.stats import mannwhitneyu

    p_value = float(mannwhitneyu(canary, primary, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p_value) else p_value


def _ratio(primary_median: float, shift: float) -> float:
    """Canary over primary, as the shifted median over the median; ∞ from a zero baseline."""
    if primary_median == 0:
        return 1.0 if shift == 0 else math.copysign(math.inf, shift)
    return (primary_median + shift) / primary_median


def no_evidence(metric: CanaryMetric, check: MetricResult, spec: JudgeSpec) -> MetricComparison:
    """NoData because the threshold check found too few requests (or none) behind the value."""
    return compare(metric, [], [], spec).model_copy(update={"message": check.message or "no data"})


def _range(url: str, query: str, start: datetime, end: datetime, step: str) -> list[float]:
    result = metrics.prometheus(url).custom_query_range(
        query, start_time=start, end_time=end, step=step
    )
    return series_values(result)[: MAX_JUDGE_POINTS + 1]


async def samples(
    query: MetricQuery, start: datetime, end: datetime, step: str
) -> tuple[list[float], str]:
    """One side's values over the window, or none and why."""
    url = metrics.prometheus_url(query)
    try:
        values = await asyncio.to_thread(_range, url, query.promql(), start, end, step)
    except metrics.QUERY_ERRORS as error:
        return [], f"Prometheus at {url} failed: {type(error).__name__}: {str(error)[:200]}"
    return values, ""


async def judge_metric(
    metric: CanaryMetric,
    check: MetricResult,
    spec: CanarySpec,
    target: Target,
    window: tuple[datetime, datetime],
    resources: Mapping[str, MetricTemplateSpec] | None = None,
) -> MetricComparison:
    """Compare one metric; its threshold check's lack of evidence is the judge's too."""
    judge = spec.analysis.judge
    assert judge is not None
    if check.status == MetricStatus.NO_DATA:
        return no_evidence(metric, check, judge)
    start, end = window
    step = f"{judge.step(spec.analysis.interval).total_seconds():g}"  # seconds
    try:
        canary_query = MetricQuery.of(metric, spec, target.namespace, resources)
    except TemplateMissing:  # the threshold check failed on it already, with the reason
        return no_evidence(metric, check, judge)
    (canary, canary_error), (primary, primary_error) = await asyncio.gather(
        samples(canary_query, start, end, step),
        samples(canary_query.for_primary(), start, end, step),
    )
    result = compare(metric, canary, primary, judge)
    error = canary_error or primary_error
    return result.model_copy(update={"message": error}) if error else result


async def judge_analysis(
    spec: CanarySpec,
    target: Target,
    checks: Sequence[MetricResult],
    resources: Mapping[str, MetricTemplateSpec] | None = None,
) -> JudgeVerdict | None:
    """The verdict on this interval, or None when ``analysis.judge`` is not set."""
    judge = spec.analysis.judge
    if judge is None:
        return None
    end = datetime.now(UTC)
    window = (end - spec.analysis.interval, end)
    comparisons = await asyncio.gather(
        *(
            judge_metric(metric, check, spec, target, window, resources)
            for metric, check in zip(spec.analysis.metrics, checks, strict=True)
        )
    )
    return weigh(list(comparisons), judge, format_duration(spec.analysis.interval))
