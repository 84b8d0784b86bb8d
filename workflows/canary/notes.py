"""What a rollout tells ``kubectl describe canary``: the Events only the workflow can write.

The workers write what they do themselves (``WeightChanged``, ``WeightHeld``, ``Promoting``,
``Promoted``, ``RolledBack``: ``activities/canary``). What only the machine sees, its verdicts,
gates and commands, is announced here, as one note per fact, and the engine hands each note
to ``canary.record_event``. Pure: the context before and after one transition, nothing else.
``docs/operators/canary.md`` lists every reason.
"""

from datetime import timedelta

from models import canary as m
from models.canary import AnalysisOutcome
from models.kube_events import EventNote
from workflows.canary.gates import GATES, Gate
from workflows.canary.guards import C, analysis_outcome, gate_ahead
from workflows.engine import ActivityRef

#: The worker that writes the notes (``activities/canary/events.py``): quick, few retries,
#: and the rollout never waits for it.
record_event = ActivityRef(
    "canary.record_event",
    timeout=timedelta(seconds=15),
    max_attempts=3,
    summary="Kubernetes Event",
)

#: How users name each gate.
_GATE_NAMES = {"Waiting": "start", "AwaitingStep": "step", "AwaitingPromotion": "promotion"}
#: Where a rollout goes that did not pass a gate.
_NOT_OPENED = {"Analysing", "RollingBack", "Aborted", "Failed", "Initializing"}


def _weight(ctx: C) -> str:
    return f"weight {ctx.data.canary_weight}"


def _verdict(before: C, after: C) -> EventNote:
    """An analysis: passed, failed or without data, with every value and threshold."""
    event = after.event
    assert isinstance(event, m.AnalysisResult)
    counted = f"{after.data.failed_checks}/{after.spec.analysis.threshold} failed checks"
    summary = event.summary()
    if event.rollback_requested:
        return EventNote(
            type="Warning",
            reason="RollbackRequested",
            message=f"a rollback webhook asked to roll back at {_weight(before)}: {summary}",
        )
    outcome = analysis_outcome(before)
    failed = after.data.failed_checks > before.data.failed_checks
    if outcome == AnalysisOutcome.PASSED:
        reason, verdict = "AnalysisPassed", "passed"
    elif failed:
        reason, verdict = "AnalysisFailed", "failed"
    else:
        reason, verdict = "AnalysisNoData", "held for data"
    failing = sorted(r.name for r in event.metrics if r.status != m.MetricStatus.PASS)
    failing += sorted(f"hook {h.name}" for h in event.hooks if not h.ok)
    return EventNote(
        type="Normal" if reason == "AnalysisPassed" else "Warning",
        reason=reason,
        message=f"analysis {verdict} at {_weight(before)} ({counted}): {summary}",
        key=f"{verdict} at {_weight(before)}: {', '.join(failing) or 'all passed'}",
    )


def _gate_note(gate: Gate, after: C) -> EventNote:
    """``GateWaiting``: which gate, at which weight, and what opens it."""
    needs = []
    if gate.needs_approval(after.spec):
        needs.append("`autopilot approve`")
    if gate.has_hooks(after.spec):
        needs.append(f"the {gate.hooks.value} webhooks")
    return EventNote(
        reason="GateWaiting",
        message=f"waiting at the {_GATE_NAMES[gate.state]} gate ({gate.state}, "
        f"{_weight(after)}) for {' and '.join(needs) or 'its conditions'}",
    )


def _command_note(before: C, after: C) -> EventNote | None:
    command = after.command
    if command is None:
        return None
    why = f": {command.reason}" if command.reason else ""
    if command.command == "approve":
        gate = before.state if before.state in GATES else gate_ahead(before)
        opened = after.state not in (before.state, *_NOT_OPENED)
        then = f"; {_GATE_NAMES.get(gate or '', 'the')} gate opened" if opened else ""
        return EventNote(reason="Approved", message=f"{gate} approved by {command.by}{why}{then}")
    reasons = {"abort": "Aborted", "promote": "PromoteRequested", "retry": "RetryRequested"}
    if command.command not in reasons:
        return None
    return EventNote(
        type="Warning" if command.command == "abort" else "Normal",
        reason=reasons[command.command],
        message=f"{command.command} by {command.by} in {before.state}{why}",
    )


def announce(before: C, after: C) -> list[EventNote]:
    """The notes one transition makes, in the order they happened."""
    event, source, target = after.event, before.state, after.state
    notes: list[EventNote] = []
    command = _command_note(before, after)
    if command is not None:
        notes.append(command)
    if isinstance(event, m.Initialized) and source == "Initializing":
        data = after.data
        if target in ("Queued", "Waiting", "Starting", "Promoting"):
            notes.append(
                EventNote(
                    reason="RolloutStarted",
                    message=f"rolling out revision {data.revision} over {data.stable_revision}",
                )
            )
        elif target == "Failed" and data.failure:
            notes.append(EventNote(type="Warning", reason="RolloutRefused", message=data.failure))
        elif event.bootstrapped:
            notes.append(
                EventNote(
                    reason="Initialized",
                    message=f"primary created from revision {data.revision}; nothing to roll "
                    "out until the next revision",
                )
            )
    elif isinstance(event, m.NewRevision) and target == "Initializing" and source != target:
        notes.append(
            EventNote(
                reason="NewRevision",
                message=f"new revision {event.revision or '(unknown)'} in {source}: "
                "restarting the analysis",
            )
        )
    elif isinstance(event, m.AnalysisResult) and source == "Analysing":
        notes.append(_verdict(before, after))
    elif isinstance(event, m.MetricSample) and target == "RollingBack" and after.data.failure:
        notes.append(
            EventNote(
                type="Warning",
                reason="AnalysisFailed",
                message=f"metric sample failed at {_weight(before)}: {after.data.failure}",
                key=f"sample failed at {_weight(before)}: {event.name}",
            )
        )
    refused = any(note.reason == "RolloutRefused" for note in notes)
    if target == "Failed" and source != "RollingBack" and after.data.failure and not refused:
        notes.append(EventNote(type="Warning", reason="RolloutFailed", message=after.data.failure))
    if target in GATES and source != target:
        notes.append(_gate_note(GATES[target], after))
    if source in GATES and target not in (source, *_NOT_OPENED) and command is None:
        notes.append(
            EventNote(
                reason="GateOpened",
                message=f"{_GATE_NAMES[source]} gate ({source}) opened: the confirm webhooks "
                "said yes",
            )
        )
    return notes
