"""The resilience operator's decisions, as pure functions of the spec, the data and a reading."""

from __future__ import annotations

from datetime import UTC, datetime

from models.resilience import ErrorRate, LatencyP99, ResilienceData, ResilienceSpec
from models.senses import KubeChange
from workflows.engine import Ctx
from workflows.resilience import (
    degraded_beyond_bound,
    degraded_within_bound,
    plan_tighter,
    recovered,
    resilience,
    service_changed,
)

AT = datetime(2026, 12, 2, tzinfo=UTC)
SPEC = ResilienceSpec(max_error_rate=5, recover_after=2, approval_above=1)


def _ctx(
    data: ResilienceData, event: ErrorRate | LatencyP99
) -> Ctx[ResilienceSpec, ResilienceData, ErrorRate | LatencyP99]:
    return Ctx(spec=SPEC, data=data, state="Watching", now=AT, event=event)


def _errors(value: float | None) -> ErrorRate:
    return ErrorRate(metric="error-rate", value=value, at=AT)


def test_a_breach_at_level_0_tightens_alone_and_at_level_1_asks_first() -> None:
    at_0 = _ctx(ResilienceData(level=0), _errors(40))
    assert degraded_within_bound(at_0)
    at_1 = _ctx(ResilienceData(level=1), _errors(40))
    assert not degraded_within_bound(at_1) and degraded_beyond_bound(at_1)
    assert plan_tighter(at_1).target_level == 2
    assert "error-rate 40 (bound 5)" in plan_tighter(at_1).reason


def test_no_data_is_neither_a_breach_nor_a_recovery() -> None:
    data = ResilienceData(level=1, healthy_readings=1)
    assert not degraded_within_bound(_ctx(data, _errors(None)))
    assert not recovered(_ctx(data, _errors(None)))


def test_a_step_back_needs_recover_after_healthy_readings_and_no_metric_breaching() -> None:
    assert not recovered(_ctx(ResilienceData(level=2, healthy_readings=0), _errors(1)))
    assert recovered(_ctx(ResilienceData(level=2, healthy_readings=1), _errors(1)))
    slow = ResilienceData(level=2, healthy_readings=1, breaching=["latency-p99"])
    assert not recovered(_ctx(slow, _errors(1)))


def test_only_opted_in_services_start_an_instance_with_the_annotations_spec() -> None:
    meta = {
        "name": "api",
        "namespace": "shop",
        "uid": "u1",
        "annotations": {"autopilot.dev/resilience": '{"approvalAbove": 2}'},
    }
    [emit] = service_changed(KubeChange("added", {"metadata": meta}))
    assert emit.start == {"approvalAbove": 2}
    assert emit.target.kind == "Service"
    [gone] = service_changed(KubeChange("deleted", {"metadata": meta}))
    assert gone.start is None
    watch = resilience.senses[0]
    assert not watch.wants(KubeChange("added", {"metadata": {**meta, "annotations": {}}}))  # type: ignore[union-attr]


def test_the_reason_names_the_metric_over_its_bound_not_the_reading_that_came_in() -> None:
    # The error rate is over; a healthy latency reading arrives and still finds it degraded.
    data = ResilienceData(level=1, breaching=["error-rate"], last_values={"error-rate": 48.0})
    latency = LatencyP99(metric="latency-p99", value=24.65, at=AT)
    planned = plan_tighter(_ctx(data, latency))
    assert planned.reason == "degraded: error-rate 48 (bound 5)"
