"""The statistical judge as pure functions: canary against primary, metric by metric, weighed
into a verdict; the analysis outcome it makes. No cluster (see test_canary_judge_e2e.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from activities.canary.judge import compare
from models.canary import AnalysisOutcome, AnalysisResult, CanaryMetric, MetricResult, MetricStatus
from models.judge import Classification, JudgeSpec, MetricComparison, Verdict, weigh

JUDGE = JudgeSpec()
#: A primary's p99 over ten steps, in milliseconds, with a little noise.
PRIMARY = [22.9, 23.1, 22.8, 23.4, 23.0, 22.7, 23.2, 23.3, 22.6, 23.0]


def metric(name: str = "request-duration", **fields: Any) -> CanaryMetric:
    return CanaryMetric.model_validate({"name": name, "thresholdRange": {"max": 500}, **fields})


def comparison(name: str, classification: Classification, **fields: Any) -> MetricComparison:
    return MetricComparison(name=name, classification=classification, **fields)


def test_a_canary_40_percent_slower_than_the_primary_is_high():
    slower = [value * 1.4 for value in PRIMARY]

    result = compare(metric(), slower, PRIMARY, JUDGE)

    assert result.classification == Classification.HIGH
    assert result.ratio is not None and 1.35 < result.ratio < 1.45
    assert result.p_value is not None and result.p_value < 0.001
    assert "request-duration High: canary 32.2 vs primary 23" in result.describe()


def test_a_canary_equal_to_the_primary_passes_even_when_every_sample_is_the_same():
    assert compare(metric(), PRIMARY, PRIMARY, JUDGE).classification == Classification.PASS
    flat = compare(metric(), [23.0] * 10, [23.0] * 10, JUDGE)
    assert flat.classification == Classification.PASS and flat.p_value == 1.0


def test_a_significant_change_within_the_allowed_effect_passes():
    a_bit_slower = [value * 1.05 for value in PRIMARY]

    result = compare(metric(), a_bit_slower, PRIMARY, JUDGE)

    assert result.p_value is not None and result.p_value < 0.05
    assert result.classification == Classification.PASS  # 5 % < allowedIncrease 1.1


def test_the_direction_decides_which_change_counts_against_the_canary():
    faster = [value * 0.5 for value in PRIMARY]
    assert compare(metric(), faster, PRIMARY, JUDGE).classification == Classification.PASS
    either = metric(judge={"direction": "either"})
    assert compare(either, faster, PRIMARY, JUDGE).classification == Classification.LOW
    success = metric("request-success-rate", thresholdRange={"min": 50})
    lower = [80.0 - i for i in range(10)]  # about 0.75 of the primary
    assert compare(success, lower, [100.0] * 10, JUDGE).classification == Classification.LOW


def test_too_few_points_is_no_data_that_the_metrics_policy_decides():
    few = compare(metric(noData="hold"), PRIMARY[:3], PRIMARY, JUDGE)
    assert few.classification == Classification.NO_DATA
    assert "3 canary and 10 primary points, fewer than minPoints 5" in few.message

    assert weigh([few], JUDGE, "1m").verdict == Verdict.NO_DATA
    failing = few.model_copy(update={"no_data": "fail"})
    assert weigh([failing], JUDGE, "1m").verdict == Verdict.FAIL
    passing = few.model_copy(update={"no_data": "pass"})
    assert weigh([passing], JUDGE, "1m").verdict == Verdict.PASS


def test_the_score_is_the_passed_share_of_the_weight_against_the_thresholds():
    high = comparison("latency", Classification.HIGH, weight=1)
    passes = [comparison(f"m{i}", Classification.PASS, weight=1) for i in range(3)]

    marginal = weigh([high, *passes], JUDGE, "1m")
    assert marginal.verdict == Verdict.MARGINAL and marginal.score == 75
    assert weigh([high, passes[0]], JUDGE, "1m").verdict == Verdict.FAIL  # 50 < 75
    light = high.model_copy(update={"weight": 0.1})
    assert weigh([light, *passes * 10], JUDGE, "1m").verdict == Verdict.PASS


def test_a_critical_metric_out_of_its_effect_fails_whatever_the_score():
    critical = comparison("errors", Classification.HIGH, critical=True, weight=0.01)
    passes = [comparison(f"m{i}", Classification.PASS, weight=100) for i in range(5)]

    verdict = weigh([critical, *passes], JUDGE, "1m")

    assert verdict.verdict == Verdict.FAIL and verdict.score is not None and verdict.score > 99
    assert "critical: errors" in verdict.summary()


def test_a_dry_run_metric_is_measured_and_shown_but_never_decides():
    dry = comparison("latency", Classification.HIGH, dry_run=True, critical=True)
    verdict = weigh([dry, comparison("success", Classification.PASS)], JUDGE, "1m")
    assert verdict.verdict == Verdict.PASS and verdict.score == 100
    assert "latency High [critical] [dry run]" in verdict.summary()

    out_of_range = MetricResult(name="latency", status=MetricStatus.FAIL, value=900, dry_run=True)
    analysis = AnalysisResult(at=datetime.now(UTC), metrics=[out_of_range])
    assert analysis.outcome == AnalysisOutcome.PASSED


def test_the_judges_verdict_makes_the_analysis_outcome():
    def outcome(verdict: Verdict) -> AnalysisOutcome:
        judged = weigh([], JUDGE, "1m").model_copy(update={"verdict": verdict})
        in_range = MetricResult(name="latency", status=MetricStatus.PASS, value=30, max=500)
        return AnalysisResult(at=datetime.now(UTC), metrics=[in_range], judge=judged).outcome

    assert outcome(Verdict.PASS) == AnalysisOutcome.PASSED
    assert outcome(Verdict.FAIL) == AnalysisOutcome.FAILED
    assert outcome(Verdict.MARGINAL) == AnalysisOutcome.NO_DATA  # held, judged again
    assert outcome(Verdict.NO_DATA) == AnalysisOutcome.NO_DATA


samples = st.lists(
    st.floats(min_value=0.1, max_value=1e6, allow_nan=False), min_size=5, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(samples)
def test_any_canary_identical_to_its_primary_passes(values):
    assert compare(metric(judge={"direction": "either"}), values, values, JUDGE).classification == (
        Classification.PASS
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1, max_value=1e4), min_size=8, max_size=60, unique=True))
def test_a_canary_entirely_above_twice_the_primary_is_high_and_below_a_quarter_low(values):
    either = metric(judge={"direction": "either"})
    top, bottom = max(values), min(values)
    above = [2 * top + v for v in values]
    below = [v * bottom / (4 * top) for v in values]
    assert compare(either, above, values, JUDGE).classification == Classification.HIGH
    assert compare(either, below, values, JUDGE).classification == Classification.LOW


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(list(Classification)), min_size=1, max_size=8),
    st.sampled_from(list(Classification)),
)
def test_adding_a_dry_run_metric_never_changes_the_verdict(classes, extra):
    deciding = [comparison(f"m{i}", c) for i, c in enumerate(classes)]
    dry = comparison("dry", extra, dry_run=True, critical=True)
    assert weigh([*deciding, dry], JUDGE, "1m").verdict == weigh(deciding, JUDGE, "1m").verdict
