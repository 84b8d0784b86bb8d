"""What a rollout announces as Kubernetes Events, decided as the workflow decides: pure.

Each test takes one transition with the engine's own decision and reads the notes the
canary makes of it (``workflows/canary/notes.py``), as ``kubectl describe`` will show them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.canary import AnalysisResult, CanaryData, CanarySpec, MetricResult, MetricStatus
from models.kube_events import EventNote
from models.operator import CommandRequest
from tests.canary.specs import make_spec
from workflows.canary import canary, notes
from workflows.engine import Ctx, Timeout, decision

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def announced(state: str, event: Any, spec: CanarySpec, data: CanaryData) -> list[EventNote]:
    """The notes of the transition the machine takes from ``state`` on ``event``."""
    taken = decision.decide(canary, state, event, spec=spec, data=data, now=NOW)
    assert taken is not None and isinstance(taken.data, CanaryData)
    before = Ctx(spec=spec, data=data, state=state, now=NOW, event=event)
    after = Ctx(spec=spec, data=taken.data, state=taken.target, now=NOW, event=event)
    return notes.announce(before, after)


def analysis(value: float) -> AnalysisResult:
    status = MetricStatus.PASS if value >= 99 else MetricStatus.FAIL
    metric = MetricResult(name="request-success-rate", status=status, value=value, min=99)
    return AnalysisResult(at=NOW, metrics=[metric])


def test_a_failed_check_says_the_value_the_threshold_and_the_count():
    [note] = announced("Analysing", analysis(48.5), make_spec(), CanaryData(canary_weight=10))

    assert (note.type, note.reason) == ("Warning", "AnalysisFailed")
    assert note.message == (
        "analysis failed at weight 10 (1/2 failed checks): request-success-rate 48.5 (fail; min 99)"
    )


def test_failed_checks_at_one_weight_are_one_event_whatever_their_values():
    data = CanaryData(canary_weight=10)
    [first] = announced("Analysing", analysis(48.5), make_spec(), data)
    [second] = announced(
        "Analysing", analysis(51.0), make_spec(), data.model_copy(update={"failed_checks": 1})
    )
    [elsewhere] = announced("Analysing", analysis(51.0), make_spec(), CanaryData(canary_weight=20))

    assert first.message_key == second.message_key != elsewhere.message_key
    assert "(2/2 failed checks)" in second.message


def test_a_passed_check_that_reaches_the_promotion_gate_says_what_opens_it():
    spec = make_spec(maxWeight=20, gates={"beforePromotion": True})
    data = CanaryData(canary_weight=20, step=1)

    verdict, gate = announced("Analysing", analysis(100), spec, data)

    assert (verdict.type, verdict.reason) == ("Normal", "AnalysisPassed")
    assert "request-success-rate 100 (pass; min 99)" in verdict.message
    assert (gate.reason, gate.message) == (
        "GateWaiting",
        "waiting at the promotion gate (AwaitingPromotion, weight 20) for `autopilot approve`",
    )


def test_an_approval_that_opens_the_gate_names_who_gave_it():
    spec = make_spec(maxWeight=20, gates={"beforePromotion": True})
    approve = CommandRequest(command="approve", by="alice", reason="dashboards are green")

    [note] = announced("AwaitingPromotion", approve, spec, CanaryData(canary_weight=20, step=1))

    assert note.reason == "Approved"
    assert note.message == (
        "AwaitingPromotion approved by alice: dashboards are green; promotion gate opened"
    )


def test_the_interval_timer_that_starts_an_analysis_announces_nothing():
    timer = Timeout(state="Progressing")
    assert announced("Progressing", timer, make_spec(), CanaryData(canary_weight=10)) == []
