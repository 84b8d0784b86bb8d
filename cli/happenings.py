"""What ``autopilot watch`` tells between two looks at a workflow: one line per happening.

Why from two looks: a workflow's status is a snapshot (state, data, the last transitions).
Printing only the transitions that changed the state hid most of a rollout: a failed
pre-rollout hook, an analysis at the same weight or an approval at a gate are transitions
that *stay* in their state and change the data. ``watch`` now compares each look with the
one before and tells, in the order a person reads it:

1. the state moves (``Starting → RollingBack on Started``);
2. what the canary machine decided: an analysis with every metric against its threshold and
   the failed-check count, a failed check outside an analysis (a pre-rollout hook, a
   watcher's sample), the weight, a gate reached or opened;
3. the machine's own message when it has a new one (every effect writes one), an error,
   a pause.

One look usually holds one happening: the machine waits at least ``analysis.interval``
between checks and ``watch`` looks every ``--interval`` (1 s). When two analyses fall
between two looks, the line is for the latest and says how many there were.

Pure functions of two statuses; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from rich.text import Text

from cli.views import CANARY_GATES, canary_spec_of, clock, pending_gate, step_line, step_text
from models.canary import AnalysisOutcome, AnalysisResult
from models.operator import OperatorStatus, TransitionRecord

#: How each analysis outcome reads, and its colour.
VERDICTS = {
    AnalysisOutcome.PASSED: ("passed", "green"),
    AnalysisOutcome.FAILED: ("failed", "red"),
    AnalysisOutcome.NO_DATA: ("no data", "yellow"),
    AnalysisOutcome.ROLLBACK: ("rollback requested", "red"),
}

#: Colour of the text of each kind of happening (steps are drawn by ``step_line``).
KIND_STYLE = {"failed-check": "red", "gate": "yellow", "error": "red", "paused": "yellow"}


@dataclass(frozen=True)
class Happening:
    """One thing ``watch`` tells: when, what kind, a sentence, and data for ``-o json``.

    Attributes:
        at: When it happened (the transition that made it), or when it was seen.
        kind: ``step``, ``analysis``, ``failed-check``, ``weight``, ``gate``, ``message``,
            ``error``, ``paused`` or ``resumed``.
        text: The sentence a person reads.
        fields: Structured details (metric values, counts, states) for scripts.
        style: Colour of the sentence (e.g. red for a failed analysis).
        record: The transition, for ``step`` happenings.
    """

    at: datetime
    kind: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    style: str = ""
    record: TransitionRecord | None = None

    def as_dict(self, workflow: str) -> dict[str, Any]:
        """One JSON record of ``watch -o json``."""
        return {
            "at": self.at.isoformat(),
            "workflow": workflow,
            "kind": self.kind,
            "text": self.text,
            **self.fields,
        }


def line(happening: Happening, workflow: str) -> Text:
    """A happening as one log line: ``<time> <workflow>: <what>``."""
    if happening.record is not None:
        return step_line(happening.record, workflow)
    return Text.assemble(
        (clock(happening.at), "dim"),
        f" {workflow}:   ",
        (happening.text, happening.style or KIND_STYLE.get(happening.kind, "")),
    )


def step(record: TransitionRecord) -> Happening:
    """A transition that moved the machine to another state."""
    return Happening(
        at=record.at,
        kind="step",
        text=step_text(record).plain,
        fields=record.model_dump(mode="json", exclude={"at"}),
        record=record,
    )


def between(
    before: OperatorStatus,
    after: OperatorStatus,
    new: list[TransitionRecord],
    seen_at: datetime,
) -> list[Happening]:
    """Everything that happened from the look ``before`` to the look ``after``.

    Args:
        before: the status at the previous look.
        after: the status now.
        new: the transitions in ``after`` that the previous look did not have, oldest first.
        seen_at: when this look was taken (the time of happenings no transition dates).
    """
    at = new[-1].at if new else seen_at
    told = [step(record) for record in new if _told_as_step(record, after)]
    decided: list[Happening] = []
    if "canary_weight" in after.data:
        decided = _canary(before, after, at)
    told += decided
    message = after.data.get("message")
    if (
        isinstance(message, str)
        and message
        and message != before.data.get("message")
        and not _covered(message, decided)
    ):
        told.append(Happening(at, "message", message))
    if after.error and after.error != before.error:
        told.append(Happening(at, "error", f"error: {after.error}"))
    if after.paused != before.paused and not after.final:
        kind = "paused" if after.paused else "resumed"
        told.append(Happening(at, kind, kind, {"paused": after.paused}))
    return told


def opening(status: OperatorStatus, recent: int = 5) -> list[Happening]:
    """What ``watch`` tells first: the last few steps and the machine's current message."""
    steps = [r for r in status.transitions if _told_as_step(r, status)][-recent:]
    told = [step(record) for record in steps]
    message = status.data.get("message")
    if isinstance(message, str) and message:
        at = status.transitions[-1].at if status.transitions else status.since
        told.append(Happening(at, "message", message))
    return told


def _told_as_step(record: TransitionRecord, status: OperatorStatus) -> bool:
    """A move to another state always; an event taken in place when no message tells it.

    An operator whose data has a ``message`` (the canary) narrates what it did in place,
    so its in-place transitions would only repeat it; another operator gets the step
    (``Open (stays) on Vote``). A timer that re-enters its state says nothing new.
    """
    if record.target != record.source:
        return True
    return "message" not in status.data and record.event != "Timeout"


def _canary(before: OperatorStatus, after: OperatorStatus, at: datetime) -> list[Happening]:
    """The canary machine's decisions between two looks (its data, compared)."""
    old, new = before.data, after.data
    spec = canary_spec_of(after.spec)
    threshold = spec.analysis.threshold if spec is not None else None
    failed = int(new.get("failed_checks") or 0)
    told: list[Happening] = []
    analysis = new.get("last_analysis")
    analyses = int(new.get("iterations") or 0) - int(old.get("iterations") or 0)
    if isinstance(analysis, dict) and (analyses > 0 or analysis != old.get("last_analysis")):
        hold = spec.analysis.no_data_hold_intervals if spec is not None else None
        told.append(_analysis(analysis, new, threshold, hold, max(analyses, 1), at))
    elif failed > int(old.get("failed_checks") or 0):
        # Why: the failure when this check reached the threshold (the message may already
        # say what came next, e.g. "rolled back: ..."), else the machine's message.
        failure, message = new.get("failure"), new.get("message")
        if failure and failure != old.get("failure"):
            why = failure
        elif message and message != old.get("message"):
            why = message
        else:
            why = f"failed checks {failed}" + (f"/{threshold}" if threshold else "")
        told.append(
            Happening(
                at, "failed-check", str(why), {"failed_checks": failed, "threshold": threshold}
            )
        )
    weight, was = new.get("canary_weight"), old.get("canary_weight")
    if weight != was and weight is not None:
        told.append(
            Happening(at, "weight", f"weight {was or 0}% → {weight}%", {"from": was, "to": weight})
        )
    gate = pending_gate(after) if after.state in CANARY_GATES else None
    if gate is not None and after.state != before.state:
        told.append(Happening(at, "gate", gate.plain, {"gate": after.state}))
    approvals = new.get("approvals") or []
    if len(approvals) > len(old.get("approvals") or []) and isinstance(approvals[-1], dict):
        given = approvals[-1]
        what = CANARY_GATES.get(str(given.get("gate")), str(given.get("gate")))
        told.append(
            Happening(
                at,
                "gate",
                f"gate {what}: approved by {given.get('by')}",
                {"gate": given.get("gate"), "approved_by": given.get("by")},
            )
        )
    return told


def _analysis(
    analysis: dict[str, Any],
    data: dict[str, Any],
    threshold: int | None,
    hold: int | None,
    count: int,
    at: datetime,
) -> Happening:
    """``analysis 3 failed: request-success-rate 93.1 (fail; min 99); failed checks 2/5``."""
    number = int(data.get("iterations") or 0)
    try:
        result = AnalysisResult.model_validate(analysis)
    except ValidationError:
        return Happening(at, "analysis", f"analysis {number}", {"iterations": number})
    verdict, style = VERDICTS[result.outcome]
    summary = result.summary()
    failed = int(data.get("failed_checks") or 0)
    text = f"analysis {number} {verdict}: {summary}; failed checks {failed}"
    if threshold:
        text += f"/{threshold}"
    streak = int(data.get("no_data_streak") or 0)
    if result.outcome == AnalysisOutcome.NO_DATA and streak:
        text += f"; weight held ({streak}/{hold})" if hold is not None else "; weight held"
    if count > 1:
        text += f" ({count} analyses since the last look)"
    return Happening(
        at,
        "analysis",
        text,
        {
            "iterations": number,
            "outcome": result.outcome.value,
            "metrics": [m.model_dump(mode="json") for m in result.metrics],
            "failed_hooks": [h.model_dump(mode="json") for h in result.hooks if not h.ok],
            "failed_checks": failed,
            "threshold": threshold,
            "summary": summary,
        },
        style=style,
    )


def _covered(message: str, told: list[Happening]) -> bool:
    """Whether a line already says what the machine's message says."""
    for happening in told:
        if message == happening.text:
            return True
        summary = happening.fields.get("summary")
        if happening.kind == "analysis" and isinstance(summary, str) and summary in message:
            return True
    return False
