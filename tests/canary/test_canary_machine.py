"""The canary machine's decisions, as pure functions: which transition, and what it remembers.

``decide`` is the engine's own pure decision (``workflows.engine.decision``), the one the
workflow takes: first matching guard, in declaration order, own transitions before ``*``,
then the effect; without Temporal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.canary import (
    AnalysisResult,
    CanaryData,
    CanarySpec,
    HookResult,
    HooksRan,
    HookType,
    Initialized,
    MetricResult,
    MetricSample,
    MetricStatus,
    NewRevision,
    NoDataPolicy,
    Promoted,
    Started,
    WeightApplied,
)
from models.operator import CommandRequest
from models.rollout_slots import QueueJoined, SlotGranted
from tests.canary.specs import make_spec
from workflows.canary import canary
from workflows.engine import Timeout, decision

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def decide(
    state: str, event: Any, spec: CanarySpec, data: CanaryData | None = None, now: datetime = NOW
) -> tuple[str, CanaryData]:
    """(next state, new data): the engine's own decision, as the workflow takes it."""
    taken = decision.decide(canary, state, event, spec=spec, data=data or CanaryData(), now=now)
    if taken is None:
        raise AssertionError(f"no transition from {state} on {type(event).__name__}")
    assert isinstance(taken.data, CanaryData)
    return taken.target, taken.data


def analysis(*metrics: tuple[str, MetricStatus, float | None], **kw: Any) -> AnalysisResult:
    return AnalysisResult(
        at=NOW,
        metrics=[
            MetricResult(name=n, status=s, value=v, min=99, no_data=kw.get("policy", "hold"))
            for n, s, v in metrics
        ],
        rollback_requested=kw.get("rollback", False),
    )


PASS = ("request-success-rate", MetricStatus.PASS, 100.0)
FAIL = ("request-success-rate", MetricStatus.FAIL, 48.5)
NO_DATA = ("request-success-rate", MetricStatus.NO_DATA, None)


def approve(by: str = "alice") -> CommandRequest:
    return CommandRequest(command="approve", by=by, reason="looks good")


# --------------------------------------------------------------- the healthy path


def test_a_passed_check_advances_to_the_next_weight():
    state, data = decide("Analysing", analysis(PASS), make_spec(), CanaryData(canary_weight=10))
    assert (state, data.step, data.canary_weight, data.iterations) == ("Progressing", 1, 20, 1)


def test_a_passed_check_at_max_weight_promotes():
    state, data = decide("Analysing", analysis(PASS), make_spec(), CanaryData(step=4))
    assert state == "Promoting" and data.phase_started_at == NOW


def test_a_promotion_gate_holds_the_rollout_at_max_weight():
    spec = make_spec(gates={"beforePromotion": True})
    state, _ = decide("Analysing", analysis(PASS), spec, CanaryData(step=4))
    assert state == "AwaitingPromotion"


def test_approving_the_promotion_gate_promotes_and_records_who():
    spec = make_spec(gates={"beforePromotion": True})
    state, data = decide("AwaitingPromotion", approve("bob"), spec, CanaryData(step=4))
    assert state == "Promoting"
    assert [(a.gate, a.by, a.reason) for a in data.approvals] == [
        ("AwaitingPromotion", "bob", "looks good")
    ]


def test_approval_before_the_confirm_hooks_say_yes_waits_for_them():
    spec = make_spec(
        gates={"beforeStart": True},
        webhooks=[{"name": "gate", "type": "confirm-rollout", "url": "http://gate"}],
    )
    state, data = decide("Waiting", approve(), spec)
    assert state == "Waiting" and data.gate_open
    yes = HooksRan(type=HookType.CONFIRM_ROLLOUT, ok=True)
    state, data = decide("Waiting", yes, spec, data)
    assert state == "Starting" and not data.gate_open


def test_confirm_hooks_alone_do_not_open_a_manual_gate():
    spec = make_spec(gates={"beforeStart": True})
    state, data = decide("Waiting", HooksRan(type=HookType.CONFIRM_ROLLOUT, ok=True), spec)
    assert state == "Waiting" and "autopilot approve" in data.message


def test_a_step_gate_stops_before_every_increase():
    spec = make_spec(gates={"beforeEachStep": True})
    state, _ = decide("Analysing", analysis(PASS), spec, CanaryData(canary_weight=10))
    assert state == "AwaitingStep"
    state, data = decide("AwaitingStep", approve(), spec, CanaryData(canary_weight=10))
    assert (state, data.canary_weight) == ("Progressing", 20)


def test_with_step_weight_promotion_traffic_moves_back_in_steps():
    spec = make_spec(stepWeightPromotion=20)
    data = CanaryData(step=4, canary_weight=50, revision="r2", stable_revision="r1")
    ready = Promoted(revision="r2", ready=True)
    state, data = decide("Promoting", ready, spec, data)
    assert state == "Promoting" and data.stable_revision == "r2"
    weights = []
    while state == "Promoting":
        state, data = decide("Promoting", Timeout(state="Promoting"), spec, data)
        weights.append(data.canary_weight)
        state, data = decide("Promoting", ready, spec, data)
    assert weights == [30, 10, 0] and state == "Finalising"


# --------------------------------------------------------------- failures


def test_a_failed_check_below_threshold_keeps_the_weight_and_counts_it():
    spec = make_spec(threshold=2)
    state, data = decide("Analysing", analysis(FAIL), spec, CanaryData(step=1, canary_weight=20))
    assert (state, data.canary_weight, data.failed_checks, data.failure) == (
        "Progressing",
        20,
        1,
        None,
    )


def test_the_threshold_th_failed_check_rolls_back_naming_the_metric_and_value():
    spec = make_spec(threshold=2)
    state, data = decide("Analysing", analysis(FAIL), spec, CanaryData(failed_checks=1))
    assert state == "RollingBack"
    assert data.failure is not None and "request-success-rate 48.5" in data.failure
    assert [(m.name, m.value) for m in data.failed_metrics] == [("request-success-rate", 48.5)]


def test_a_rollback_webhook_rolls_back_at_once():
    result = analysis(PASS, rollback=True)
    result.hooks.append(HookResult(name="red button", type=HookType.ROLLBACK, ok=True))
    state, data = decide("Analysing", result, make_spec(threshold=5))
    assert state == "RollingBack" and "red button" in (data.failure or "")


def test_a_canary_not_ready_within_the_progress_deadline_is_rolled_back():
    spec = make_spec()
    started = CanaryData(phase_started_at=NOW - timedelta(seconds=spec.progress_deadline_seconds))
    state, data = decide("Starting", Started(ready=False, message="0 of 2"), spec, started)
    assert state == "RollingBack" and "progressDeadlineSeconds" in (data.failure or "")
    state, _ = decide("Starting", Started(ready=False), spec, CanaryData(phase_started_at=NOW))
    assert state == "Starting"


def test_a_weight_that_could_not_be_applied_is_not_skipped():
    data = CanaryData(step=1, canary_weight=20)
    held = WeightApplied(primary=90, canary=10, held=True, message="not ready")
    state, data = decide("Progressing", held, make_spec(), data)
    assert state == "Progressing" and data.weight_held
    state, data = decide("Analysing", analysis(PASS), make_spec(), data)
    assert (state, data.step, data.canary_weight) == ("Progressing", 1, 20)


# --------------------------------------------------------------- no data


@pytest.mark.parametrize("limit", [0, 3])
def test_no_data_holds_for_the_configured_intervals_then_counts_as_a_failure(limit):
    spec = make_spec(threshold=1, noDataHoldIntervals=limit)
    data = CanaryData(step=1, canary_weight=20)
    states = []
    for _ in range(limit + 1):
        state, data = decide("Analysing", analysis(NO_DATA), spec, data)
        states.append(state)
    assert states == ["Progressing"] * limit + ["RollingBack"]
    assert data.canary_weight == 20 and "no data" in (data.failure or "")


def test_no_data_with_policy_fail_is_a_failed_check_at_once():
    state, _ = decide("Analysing", analysis(NO_DATA, policy="fail"), make_spec(threshold=1))
    assert state == "RollingBack"


def test_no_data_with_policy_pass_advances():
    result = analysis(NO_DATA, policy=NoDataPolicy.PASS)
    state, data = decide("Analysing", result, make_spec(), CanaryData(canary_weight=10))
    assert (state, data.canary_weight) == ("Progressing", 20)


def test_data_coming_back_resets_the_no_data_streak():
    data = CanaryData(no_data_streak=2)
    _, data = decide("Analysing", analysis(PASS), make_spec(), data)
    assert data.no_data_streak == 0


# --------------------------------------------------------------- revisions and retry


def test_a_new_revision_restarts_the_analysis():
    data = CanaryData(revision="r2", step=3, canary_weight=40, failed_checks=1, attempt=1)
    state, data = decide("Progressing", NewRevision(revision="r3"), make_spec(), data)
    assert (state, data.step, data.failed_checks, data.attempt) == ("Initializing", 0, 0, 1)


def test_the_same_revision_again_is_not_a_new_revision():
    with pytest.raises(AssertionError, match="no transition"):
        decide("Failed", NewRevision(revision="r2"), make_spec(), CanaryData(revision="r2"))


def test_retry_rolls_the_rejected_revision_out_again():
    data = CanaryData(revision="r2", stable_revision="r1", failure="x", failed_checks=2)
    retry = CommandRequest(command="retry", by="carol")
    state, data = decide("Failed", retry, make_spec(), data)
    assert (state, data.retry_of, data.attempt, data.failed_checks) == ("Initializing", "r2", 1, 0)
    event = Initialized(revision="r2", stable_revision="r1", needs_rollout=True)
    state, data = decide("Initializing", event, make_spec(), data)
    assert state == "Queued"
    state, _ = decide("Queued", QueueJoined(scope=None), make_spec(), data)  # no cap
    assert state == "Starting"


def test_a_rejected_revision_is_not_rolled_out_again_by_a_replayed_event():
    event = Initialized(
        revision="r2",
        stable_revision="r1",
        needs_rollout=False,
        rejected=True,
        rejected_reason="3 failed checks",
    )
    state, data = decide("Initializing", event, make_spec())
    assert state == "Failed" and "autopilot retry" in (data.failure or "")


def test_skip_analysis_promotes_at_once():
    spec = CanarySpec.model_validate(
        {**make_spec().model_dump(by_alias=True), "skipAnalysis": True}
    )
    event = Initialized(revision="r2", stable_revision="r1", needs_rollout=True)
    state, data = decide("Initializing", event, spec)
    assert decide(state, QueueJoined(scope=None), spec, data)[0] == "Promoting"


# --------------------------------------------------------------- concurrency cap


def test_a_rollout_queues_for_its_permit_and_starts_once_it_holds_every_one():
    event = Initialized(revision="r2", stable_revision="r1", needs_rollout=True)
    state, data = decide("Initializing", event, make_spec())
    assert state == "Queued"

    state, data = decide(state, QueueJoined(scope="ns/shop", limit=2), make_spec(), data)
    assert (state, data.message) == ("Queued", "queued for a rollout permit of ns/shop (cap 2)")
    state, data = decide(state, SlotGranted(scope="ns/shop"), make_spec(), data)
    assert (state, data.slots) == ("Queued", ["ns/shop"])  # re-entered: asks for the next
    state, data = decide(state, QueueJoined(scope="global", limit=1), make_spec(), data)
    state, data = decide(state, SlotGranted(scope="global"), make_spec(), data)
    later = NOW + timedelta(hours=1)
    state, data = decide(state, QueueJoined(scope=None), make_spec(), data, now=later)

    assert state == "Starting" and data.slots == ["ns/shop", "global"]
    assert data.phase_started_at == later  # the progress deadline starts after the queue


def test_a_rollout_can_be_aborted_while_queued_but_not_promoted_past_the_cap():
    assert canary.commands_in("Queued") == ["abort", "pause"]
    abort = CommandRequest(command="abort", by="bob")
    assert decide("Queued", abort, make_spec())[0] == "Aborted"


def test_a_first_run_has_nothing_to_roll_out():
    event = Initialized(revision="r1", stable_revision=None, needs_rollout=False, bootstrapped=True)
    state, data = decide("Initializing", event, make_spec())
    assert state == "Succeeded" and data.outcome == "initialized"


def test_every_state_names_what_it_accepts():
    assert canary.commands_in("AwaitingPromotion") == ["abort", "approve", "pause", "promote"]
    assert "approve" not in canary.commands_in("Progressing")
    assert canary.commands_in("Failed") == ["abort", "pause", "promote", "retry"]


# --------------------------------------------------------------- watcher samples


def sample(value: float | None, seconds_after_weight: float) -> MetricSample:
    return MetricSample(
        name="request-success-rate", value=value, at=NOW + timedelta(seconds=seconds_after_weight)
    )


def at_weight(**data: Any) -> CanaryData:
    return CanaryData(step=1, canary_weight=20, weight_since=NOW, **data)


def spec_with_success_rate(threshold: int) -> CanarySpec:
    metric = {"name": "request-success-rate", "thresholdRange": {"min": 99}}
    return make_spec(threshold=threshold, metrics=[metric])


def test_a_failing_sample_that_makes_the_last_allowed_check_rolls_back_at_once():
    state, data = decide("Progressing", sample(48.5, 1), spec_with_success_rate(1), at_weight())
    assert state == "RollingBack" and data.failed_checks == 1
    assert "request-success-rate 48.5" in (data.failure or "")


@pytest.mark.parametrize(
    ("value", "after", "threshold"),
    [
        (48.5, -1, 1),  # older than the current weight
        (None, 1, 1),  # no data is judged once per interval, by its policy
        (99.5, 1, 1),  # in range
        (48.5, 1, 2),  # a failure below the threshold waits for the interval's analysis
    ],
)
def test_other_samples_leave_the_decision_to_the_intervals_analysis(value, after, threshold):
    with pytest.raises(AssertionError, match="no transition"):
        decide("Progressing", sample(value, after), spec_with_success_rate(threshold), at_weight())


def test_an_approval_during_the_gates_analysis_is_kept_for_the_gate():
    spec = make_spec(gates={"beforePromotion": True})
    state, data = decide("Analysing", approve("dan"), spec, CanaryData(step=4))
    assert state == "Analysing" and data.gate_open
    assert data.approvals[0].gate == "AwaitingPromotion"
    state, data = decide("Analysing", analysis(PASS), spec, data)
    assert state == "AwaitingPromotion"
    yes = HooksRan(type=HookType.CONFIRM_PROMOTION, ok=True)
    assert decide("AwaitingPromotion", yes, spec, data)[0] == "Promoting"


def test_an_approval_during_an_analysis_with_no_gate_ahead_is_refused():
    with pytest.raises(AssertionError, match="no transition"):
        decide("Analysing", approve(), make_spec(), CanaryData(step=1))
