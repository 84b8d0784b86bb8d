"""The operators the model test drives, and what the world may do to each of them.

For every operator: the spec it is started with (short timers of about a second, or long
ones that never fire during a test), the event that starts it (sent with signal-with-start,
as the watchers and the CLI do), the watcher events that may arrive later, and for each
worker a small menu of plausible answers built from the event models the real workers
return (``activities/``). Any worker may also fail; the model test adds that answer itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from models import canary as c
from models import quarantine as q
from models.canary import HookResult, HooksRan, HookType, MetricResult, MetricStatus
from models.canary_git import RollbackRecorded
from models.gitops_modes import PullRequestPolled
from models.operator import EventEnvelope, Target
from models.rollout_slots import QueueJoined
from tests.model import drill_operator as d
from workflows.canary import CanaryWorkflow, canary
from workflows.engine import Operator
from workflows.quarantine import QuarantineWorkflow, quarantine

#: The Kubernetes namespace of every target the model test invents.
NAMESPACE = "model"


@dataclass
class Cluster:
    """What the stand-in workers see of one target: the revision its template has now."""

    revision: str = "r1"


Step = dict[str, Any]
Make = Callable[[Step, Cluster], BaseModel | None]


@dataclass(frozen=True)
class Answer:
    """One plausible result of a worker."""

    label: str
    make: Make


@dataclass(frozen=True)
class WatcherEvent:
    """One event a watcher may send; ``revision`` is what the target's template became."""

    label: str
    make: Callable[[Target], BaseModel]
    revision: str | None = None


@dataclass(frozen=True)
class Subject:
    """An operator under test and everything the model test may do to it."""

    operator: Operator[Any, Any]
    workflow: type[Any]
    spec: Callable[[Target, int, bool], dict[str, Any]]
    start: WatcherEvent
    events: tuple[WatcherEvent, ...]
    answers: dict[str, tuple[Answer, ...]]
    variants: tuple[str, ...] = ("plain",)
    commands: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = dict.fromkeys([*self.operator.commands(), "retry"])
        object.__setattr__(self, "commands", tuple(names))
        missing = set(self.operator.activity_refs()) - set(self.answers)
        assert not missing, f"{self.operator.name}: no answers for {sorted(missing)}"

    @property
    def name(self) -> str:
        return self.operator.name

    def answers_for(self, activity: str) -> tuple[Answer, ...]:
        return self.answers[activity]


def envelope(event: BaseModel, event_id: str, source: str = "model test") -> EventEnvelope:
    """A watcher's envelope for ``event``."""
    return EventEnvelope(
        id=event_id,
        type=type(event).__name__,
        payload=event.model_dump(mode="json"),
        source=source,
        observed_at=datetime.now(UTC),
    )


def _none(step: Step, cluster: Cluster) -> None:
    return None


NOTHING = (Answer("done", _none),)

# ======================================================================= canary


def canary_spec(target: Target, variant: int, short: bool) -> dict[str, Any]:
    """A canary of one step (weight 50, then promotion); the variants add a second step
    and every gate, skip the analysis, or promote in steps with a one-second deadline."""
    analysis: dict[str, Any] = {
        "interval": "1s" if short else "1h",
        "threshold": 2,
        "stepWeight": 50,
        "maxWeight": 50,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    }
    spec: dict[str, Any] = {
        "targetRef": {"name": target.name},
        "service": {"port": 9898},
        "analysis": analysis,
    }
    kind = CANARY_VARIANTS[variant % len(CANARY_VARIANTS)]
    if kind == "gated":
        analysis["maxWeight"] = 100
        analysis["gates"] = {"beforeStart": True, "beforeEachStep": True, "beforePromotion": True}
    elif kind == "skip analysis":
        spec["skipAnalysis"] = True
    elif kind == "stepped promotion":
        analysis["stepWeightPromotion"] = 50
        spec["progressDeadlineSeconds"] = 1
    return spec


CANARY_VARIANTS = ("plain", "gated", "skip analysis", "stepped promotion")


def _weight(step: Step) -> int:
    return int(step["data"].get("canary_weight", 0))


def _metric(status: MetricStatus, value: float | None) -> MetricResult:
    return MetricResult(name="request-success-rate", status=status, value=value, min=99)


def _analysis(*metrics: MetricResult, rollback: bool = False) -> c.AnalysisResult:
    hooks = [HookResult(name="stop", type=HookType.ROLLBACK, ok=True)] if rollback else []
    return c.AnalysisResult(
        at=datetime.now(UTC), metrics=list(metrics), hooks=hooks, rollback_requested=rollback
    )


def _hooks(kind: HookType) -> tuple[Answer, ...]:
    no = HookResult(name="gate", type=kind, ok=False, status=503, message="not yet")
    stop = HookResult(name="stop", type=HookType.ROLLBACK, ok=True)
    return (
        Answer("yes", lambda s, k: HooksRan(type=kind, ok=True)),
        Answer("no", lambda s, k: HooksRan(type=kind, ok=False, results=[no])),
        Answer(
            "roll back",
            lambda s, k: HooksRan(type=kind, ok=True, results=[stop], rollback_requested=True),
        ),
    )


_PRE_ROLLOUT_NO = HooksRan(
    type=HookType.PRE_ROLLOUT,
    ok=False,
    results=[HookResult(name="smoke", type=HookType.PRE_ROLLOUT, ok=False, message="500")],
)

CANARY = Subject(
    operator=canary,
    workflow=CanaryWorkflow,
    spec=canary_spec,
    variants=CANARY_VARIANTS,
    start=WatcherEvent("new revision r1", lambda t: c.NewRevision(revision="r1"), "r1"),
    events=(
        WatcherEvent("new revision r1", lambda t: c.NewRevision(revision="r1"), "r1"),
        WatcherEvent("new revision r2", lambda t: c.NewRevision(revision="r2"), "r2"),
        WatcherEvent("target deleted", lambda t: c.TargetDeleted()),
        WatcherEvent(
            "failing sample",
            lambda t: c.MetricSample(name="request-success-rate", value=42, at=datetime.now(UTC)),
        ),
        WatcherEvent(
            "passing sample",
            lambda t: c.MetricSample(name="request-success-rate", value=100, at=datetime.now(UTC)),
        ),
    ),
    answers={
        "canary.initialize": (
            Answer(
                "needs a rollout",
                lambda s, k: c.Initialized(
                    revision=k.revision, stable_revision="r0", needs_rollout=True
                ),
            ),
            Answer(
                "nothing to roll out",
                lambda s, k: c.Initialized(
                    revision=k.revision, stable_revision=k.revision, needs_rollout=False
                ),
            ),
            Answer(
                "rejected before",
                lambda s, k: c.Initialized(
                    revision=k.revision,
                    stable_revision="r0",
                    needs_rollout=True,
                    rejected=True,
                    rejected_reason="rolled back",
                ),
            ),
        ),
        "canary.request_slot": (Answer("every permit held", lambda s, k: QueueJoined()),),
        "canary.start": (
            Answer(
                "ready, hooks passed",
                lambda s, k: c.Started(
                    ready=True, hooks=HooksRan(type=HookType.PRE_ROLLOUT, ok=True)
                ),
            ),
            Answer("not ready", lambda s, k: c.Started(ready=False, message="0/1 ready")),
            Answer("hooks failed", lambda s, k: c.Started(ready=True, hooks=_PRE_ROLLOUT_NO)),
        ),
        "canary.set_weight": (
            Answer(
                "applied",
                lambda s, k: c.WeightApplied(primary=100 - _weight(s), canary=_weight(s)),
            ),
            Answer(
                "held",
                lambda s, k: c.WeightApplied(
                    primary=100, canary=0, held=True, message="canary not ready"
                ),
            ),
        ),
        "canary.analyse": (
            Answer("passed", lambda s, k: _analysis(_metric(MetricStatus.PASS, 100))),
            Answer("failed", lambda s, k: _analysis(_metric(MetricStatus.FAIL, 42))),
            Answer("no data", lambda s, k: _analysis(_metric(MetricStatus.NO_DATA, None))),
            Answer("rollback hook", lambda s, k: _analysis(rollback=True)),
        ),
        "canary.confirm_rollout_hooks": _hooks(HookType.CONFIRM_ROLLOUT),
        "canary.confirm_traffic_increase_hooks": _hooks(HookType.CONFIRM_TRAFFIC_INCREASE),
        "canary.confirm_promotion_hooks": _hooks(HookType.CONFIRM_PROMOTION),
        "canary.promote": (
            Answer(
                "primary ready",
                lambda s, k: c.Promoted(
                    revision=s["data"].get("revision") or k.revision, ready=True
                ),
            ),
            Answer(
                "primary not ready",
                lambda s, k: c.Promoted(
                    revision=s["data"].get("revision") or k.revision,
                    ready=False,
                    message="primary 0/1 ready",
                ),
            ),
        ),
        "canary.finalise": (Answer("finalised", lambda s, k: c.Finalised()),),
        "canary.rollback": (Answer("rolled back", lambda s, k: c.RolledBack()),),
        "canary.post_rollout_hooks": NOTHING,
        "canary.notify": NOTHING,
        "canary.record_event": NOTHING,  # started, never waited for: any answer will do
        "canary.send_alert": NOTHING,  # the same
        "canary.record_rollback": (
            Answer("not configured", lambda s, k: RollbackRecorded(outcome="not-configured")),
            Answer("opened", lambda s, k: RollbackRecorded(outcome="opened", number=1, url="u")),
        ),
    },
)

# =================================================================== quarantine


def _alert(fingerprint: str, resolved: bool = False) -> Callable[[Target], BaseModel]:
    def make(target: Target) -> BaseModel:
        fields: dict[str, Any] = {
            "alertname": "CryptoMinerDetected",
            "severity": "critical",
            "labels": {"namespace": target.namespace, "deployment": target.name},
            "fingerprint": fingerprint,
            "starts_at": "2025-03-14T09:26:53.589000Z",
        }
        if resolved:
            return q.AlertResolved(**fields, ends_at=datetime.now(UTC))
        return q.SecurityAlert(**fields)

    return make


QUARANTINE = Subject(
    operator=quarantine,
    workflow=QuarantineWorkflow,
    spec=lambda t, variant, short: {"escalateAfter": "1s" if short else "1h"},
    start=WatcherEvent("alert a", _alert("a")),
    events=(
        WatcherEvent("alert a", _alert("a")),
        WatcherEvent("alert b", _alert("b")),
        WatcherEvent("alert a resolved", _alert("a", resolved=True)),
    ),
    answers={
        "quarantine.apply_deny_policy": (
            Answer(
                "applied",
                lambda s, k: q.PolicyApplied(
                    name=f"{s['target']['name']}-quarantine",
                    selector={"app": s["target"]["name"]},
                    selected_by="deployment",
                    changed=True,
                ),
            ),
        ),
        "quarantine.snapshot_evidence": (
            Answer(
                "recorded",
                lambda s, k: q.EvidenceRecorded(
                    config_map=f"{s['target']['name']}-quarantine-evidence", images=["app=web:1"]
                ),
            ),
        ),
        "quarantine.label_workload": NOTHING,
        "quarantine.notify_security": (
            Answer(
                "notified",
                lambda s, k: q.SecurityNotified(kubernetes_event=f"{s['target']['name']}.q"),
            ),
        ),
        "quarantine.remove_deny_policy": NOTHING,
        "quarantine.unlabel_workload": NOTHING,
        "quarantine.record_isolation": (
            Answer("not configured", lambda s, k: q.IsolationRecorded(outcome="not-configured")),
            Answer("opened", lambda s, k: q.IsolationRecorded(outcome="opened", number=1)),
        ),
        "quarantine.propose_release": (
            Answer("opened", lambda s, k: q.ReleaseProposed(outcome="opened", number=2)),
            Answer("nothing in git", lambda s, k: q.ReleaseProposed(outcome="unchanged")),
        ),
        "quarantine.poll_release": (
            Answer("open", lambda s, k: PullRequestPolled(number=2, state="open")),
            Answer("merged", lambda s, k: PullRequestPolled(number=2, state="merged")),
            Answer("closed", lambda s, k: PullRequestPolled(number=2, state="closed")),
        ),
        "quarantine.await_release_applied": (
            Answer("pruned", lambda s, k: q.ReleaseApplied(policy="p", waited_s=1)),
        ),
    },
)

# ======================================================================== drill

DRILL = Subject(
    operator=d.drill,
    workflow=d.DrillWorkflow,
    spec=lambda t, variant, short: {"cooling_s": 1.0 if short else 3600.0},
    start=WatcherEvent("vote by ann", lambda t: d.Vote(voter="ann")),
    events=(
        WatcherEvent("vote by ann", lambda t: d.Vote(voter="ann")),
        WatcherEvent("vote by bob", lambda t: d.Vote(voter="bob")),
        WatcherEvent("stop", lambda t: d.Stop()),
    ),
    answers={
        "drill.prepare": (
            Answer("ready", lambda s, k: d.Prepared(ready=True)),
            Answer("not ready", lambda s, k: d.Prepared(ready=False)),
        ),
        "drill.work": (
            Answer("worked", lambda s, k: d.Worked(ok=True)),
            Answer("did not work", lambda s, k: d.Worked(ok=False)),
        ),
        "drill.report": NOTHING,
    },
)

SUBJECTS: dict[str, Subject] = {s.name: s for s in (CANARY, QUARANTINE, DRILL)}
