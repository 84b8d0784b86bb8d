"""The canary operator: progressive delivery on Istio as one durable state machine per Deployment.

Read top to bottom: the workers each state runs, the guards and effects (small pure
functions), then the machine: states, then transitions grouped by state. The life of a
rollout::

    Initializing ─▶ Waiting (gate) ─▶ Starting ─▶ Progressing ⇄ Analysing ─▶ AwaitingPromotion
                                                   │   ▲            │                 │
                                                   │   └─ AwaitingStep (gate)         ▼
                                                   ▼                      Promoting ─▶ Finalising
                                              RollingBack ─▶ Failed                    │
                                                      (retry, new revision)      Succeeded ◀┘

Between ``Initializing`` and the first of Waiting, Starting or Promoting, ``Queued`` waits
for the permits of the concurrency cap (``workflows/rollout_slots.py``); with no cap
configured it passes at once.

``Progressing`` writes the weight of the current step to the VirtualService and waits one
``analysis.interval``; ``Analysing`` runs the hooks and metric checks and decides: next step,
same step again (a failed check below ``threshold``, or no data being held), rollback, a
gate, or promotion. Every wait is a durable timer and every decision is recorded, so a
worker crash or a server restart loses nothing. Pause and resume are the engine's.

Guards and effects are pure (no I/O, no clock but ``ctx.now``); the workers run in
``activities/canary`` and are named here, never imported.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
import hashlib
from datetime import timedelta
from typing import Any, cast

from temporalio import workflow

from models import canary as m
from models.canary import AnalysisOutcome, CanaryData, CanarySpec, HookType, MetricStatus
from models.canary_watch import DATA_HASH_ATTRIBUTE
from models.operator import OperatorInput, OperatorStatus
from models.rollout_slots import QueueJoined, SlotGranted
from workflows.engine import (
    ANY,
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    Operator,
    OperatorWorkflow,
    Timeout,
)
from workflows.registry import register

C = Ctx[CanarySpec, CanaryData]

# Our events live in models/ (shared with watchers and activities); short names here.
NewRevision = m.NewRevision
MetricSample = m.MetricSample
TargetDeleted = m.TargetDeleted
Initialized = m.Initialized
HooksRan = m.HooksRan
Started = m.Started
WeightApplied = m.WeightApplied
AnalysisResult = m.AnalysisResult
Promoted = m.Promoted
Finalised = m.Finalised
RolledBack = m.RolledBack

# =============================================================================
# Workers (activities/canary), by name
# =============================================================================

_QUICK = timedelta(seconds=60)
_HOOKS = timedelta(minutes=5)

initialize = ActivityRef(
    "canary.initialize", returns=Initialized, timeout=_QUICK, summary="create primary, routes"
)
start = ActivityRef(
    "canary.start",
    returns=Started,
    timeout=_HOOKS,
    heartbeat_timeout=timedelta(seconds=20),  # it heartbeats while waiting for readiness
    summary="scale up canary, pre-rollout hooks",
)
set_weight = ActivityRef(
    "canary.set_weight", returns=WeightApplied, timeout=_QUICK, summary="set route weights"
)
analyse = ActivityRef(
    "canary.analyse", returns=AnalysisResult, timeout=_HOOKS, summary="hooks and metric checks"
)
confirm_rollout = ActivityRef(
    "canary.confirm_rollout_hooks", returns=HooksRan, timeout=_HOOKS, summary="confirm-rollout"
)
confirm_step = ActivityRef(
    "canary.confirm_traffic_increase_hooks",
    returns=HooksRan,
    timeout=_HOOKS,
    summary="confirm-traffic-increase",
)
confirm_promotion = ActivityRef(
    "canary.confirm_promotion_hooks", returns=HooksRan, timeout=_HOOKS, summary="confirm-promotion"
)
promote = ActivityRef(
    "canary.promote", returns=Promoted, timeout=_QUICK, summary="copy template to primary"
)
finalise = ActivityRef(
    "canary.finalise", returns=Finalised, timeout=_QUICK, summary="route 100/0, scale canary down"
)
rollback = ActivityRef(
    "canary.rollback",
    returns=RolledBack,
    timeout=timedelta(seconds=30),
    max_attempts=0,  # unlimited: traffic must go back to the primary
    maximum_retry_interval=timedelta(seconds=2),
    summary="route 100/0 at once, scale canary down",
)
request_slot = ActivityRef(
    "canary.request_slot", returns=QueueJoined, timeout=_QUICK, summary="ask for a permit"
)
# It also gives back the rollout's permits of the concurrency cap (in the worker, so that
# histories recorded before the cap existed replay unchanged).
post_rollout = ActivityRef("canary.post_rollout_hooks", timeout=_HOOKS, summary="post-rollout")
notify = ActivityRef("canary.notify", timeout=_QUICK, summary="event webhooks")

# =============================================================================
# Timers
# =============================================================================


def interval(ctx: C) -> timedelta:
    """``analysis.interval``: between steps, and between polls while waiting."""
    return ctx.spec.analysis.interval


def overdue(ctx: C) -> bool:
    """Waiting for readiness longer than ``progressDeadlineSeconds``."""
    since = ctx.data.phase_started_at or ctx.now
    return ctx.now - since >= ctx.spec.progress_deadline


# =============================================================================
# Guards: pure questions about spec, data and the event
# =============================================================================


def plan(ctx: C) -> list[int]:
    """The canary weights of this rollout, in order."""
    return ctx.spec.analysis.weight_plan()


def at_last_step(ctx: C) -> bool:
    """The current weight is the last of the plan (promotion comes next)."""
    return ctx.data.step >= len(plan(ctx)) - 1


def is_new_revision(ctx: C) -> bool:
    """A NewRevision for a template other than the one being handled."""
    revision = ctx.event.revision
    return revision is None or revision != ctx.data.revision


def rejected(ctx: C) -> bool:
    """Initialized: this revision failed or was aborted before (``retry`` overrides)."""
    return bool(ctx.event.rejected)


def nothing_to_roll_out(ctx: C) -> bool:
    """Initialized: the primary already runs this revision (or was just created from it)."""
    return not ctx.event.needs_rollout


def skip_analysis(ctx: C) -> bool:
    """``skipAnalysis: true``: promote at once."""
    return ctx.spec.skip_analysis


_GATE_HOOKS = {
    "Waiting": HookType.CONFIRM_ROLLOUT,
    "AwaitingStep": HookType.CONFIRM_TRAFFIC_INCREASE,
    "AwaitingPromotion": HookType.CONFIRM_PROMOTION,
}


def _gate_flag(spec: CanarySpec, state: str) -> bool:
    gates = spec.analysis.gates
    return {
        "Waiting": gates.before_start,
        "AwaitingStep": gates.before_each_step,
        "AwaitingPromotion": gates.before_promotion,
    }[state]


def _gated(spec: CanarySpec, gate_state: str) -> bool:
    return _gate_flag(spec, gate_state) or bool(spec.analysis.hooks(_GATE_HOOKS[gate_state]))


def start_gated(ctx: C) -> bool:
    """A start gate or confirm-rollout hooks must say yes before the canary is scaled up."""
    return _gated(ctx.spec, "Waiting")


def step_gated(ctx: C) -> bool:
    """A step gate or confirm-traffic-increase hooks must say yes before each increase."""
    return _gated(ctx.spec, "AwaitingStep")


def promotion_gated(ctx: C) -> bool:
    """A promotion gate or confirm-promotion hooks must say yes before promotion."""
    return _gated(ctx.spec, "AwaitingPromotion")


def approved(ctx: C) -> bool:
    """The manual gate of the current state is open (approved, or not configured)."""
    return ctx.data.gate_open or not _gate_flag(ctx.spec, ctx.state)


def confirmed(ctx: C) -> bool:
    """The confirm hooks of the current state said yes (or there are none)."""
    return ctx.data.hooks_confirmed or not ctx.spec.analysis.hooks(_GATE_HOOKS[ctx.state])


def hooks_open_the_gate(ctx: C) -> bool:
    """HooksRan: the hooks said yes and the manual gate is open too."""
    return bool(ctx.event.ok) and approved(ctx)


def rollback_asked(ctx: C) -> bool:
    """A ``rollback`` webhook answered yes."""
    return bool(ctx.event.rollback_requested)


def ready_and_hooks_passed(ctx: C) -> bool:
    """Started: the canary is ready and every pre-rollout hook said yes."""
    return bool(ctx.event.ready) and ctx.event.hooks is not None and ctx.event.hooks.ok


def hooks_failed_at_threshold(ctx: C) -> bool:
    """Started: a pre-rollout hook failed and that makes ``threshold`` failed checks."""
    return bool(ctx.event.ready) and threshold_reached(ctx)


def ready(ctx: C) -> bool:
    """Started: the canary is ready (so its pre-rollout hooks failed)."""
    return bool(ctx.event.ready)


def not_ready_past_deadline(ctx: C) -> bool:
    """Started / Promoted: not ready, and the progress deadline has passed."""
    return not ctx.event.ready and overdue(ctx)


def weight_held_past_deadline(ctx: C) -> bool:
    """WeightApplied: not raised (canary not ready) for longer than the progress deadline."""
    return bool(ctx.event.held) and overdue(ctx)


def weight_held(ctx: C) -> bool:
    """WeightApplied: the weight was not raised because the canary is not ready."""
    return bool(ctx.event.held)


def _outcome(ctx: C) -> AnalysisOutcome:
    return cast(AnalysisOutcome, ctx.event.outcome)


def counts_as_failure(ctx: C) -> bool:
    """AnalysisResult: a failed check, or no data held for ``noDataHoldIntervals`` already."""
    outcome = _outcome(ctx)
    limit = ctx.spec.analysis.no_data_hold_intervals
    return outcome == AnalysisOutcome.FAILED or (
        outcome == AnalysisOutcome.NO_DATA and ctx.data.no_data_streak >= limit
    )


def threshold_reached(ctx: C) -> bool:
    """This failure makes ``analysis.threshold`` failed checks."""
    return ctx.data.failed_checks + 1 >= ctx.spec.analysis.threshold


def _breach(ctx: C) -> m.MetricResult | None:
    """MetricSample: the metric's result if this fresh sample is out of range, else None."""
    sample = ctx.event
    metric = next((x for x in ctx.spec.analysis.metrics if x.name == sample.name), None)
    since = ctx.data.weight_since
    if metric is None or sample.value is None or since is None or sample.at <= since:
        return None  # unknown metric, no data (judged per interval), or older than the weight
    bounds = metric.bounds()
    low = bounds.min is not None and sample.value < bounds.min
    high = bounds.max is not None and sample.value > bounds.max
    if not (low or high):
        return None
    return m.MetricResult(
        name=metric.name,
        status=MetricStatus.FAIL,
        value=sample.value,
        min=bounds.min,
        max=bounds.max,
        no_data=metric.no_data,
        message=f"sample at {sample.at.isoformat()}",
    )


def sample_fails_at_threshold(ctx: C) -> bool:
    """MetricSample: out of range, and it would be the ``threshold``-th failed check."""
    return _breach(ctx) is not None and threshold_reached(ctx)


def fails_at_threshold(ctx: C) -> bool:
    """AnalysisResult: a failure that reaches the threshold: roll back."""
    return counts_as_failure(ctx) and threshold_reached(ctx)


def no_data_held(ctx: C) -> bool:
    """AnalysisResult: only 'hold' metrics lacked data, within the hold limit."""
    return _outcome(ctx) == AnalysisOutcome.NO_DATA


def last_weight_was_held(ctx: C) -> bool:
    """The weight of this step never reached the VirtualService: do not advance past it."""
    return ctx.data.weight_held


def passed_last_step_gated(ctx: C) -> bool:
    """Passed at the last step, and promotion has a gate."""
    return at_last_step(ctx) and promotion_gated(ctx)


def passed_step_gated(ctx: C) -> bool:
    """Passed before the last step, and every increase has a gate."""
    return not at_last_step(ctx) and step_gated(ctx)


def promoted_and_drained(ctx: C) -> bool:
    """Promoted: the primary is ready and no traffic is left to move back to it."""
    return bool(ctx.event.ready) and (
        ctx.spec.analysis.step_weight_promotion is None or ctx.data.canary_weight == 0
    )


def primary_promoted(ctx: C) -> bool:
    """The primary runs the new revision (so weight may move back to it)."""
    return ctx.data.stable_revision == ctx.data.revision and ctx.data.revision is not None


def _gate_ahead(ctx: C) -> str | None:
    """In Analysing: the gate the rollout waits at between analyses, if any."""
    if at_last_step(ctx):
        return "AwaitingPromotion" if promotion_gated(ctx) else None
    return "AwaitingStep" if step_gated(ctx) else None


def at_a_gate(ctx: C) -> bool:
    """Analysing between two visits of a gate: an approval now is for that gate."""
    return _gate_ahead(ctx) is not None


def holds_every_slot(ctx: C) -> bool:
    """QueueJoined: no permit is missing (or no cap is configured)."""
    return ctx.event.scope is None


def holds_every_slot_and_skip(ctx: C) -> bool:
    """QueueJoined: every permit held and ``skipAnalysis``: promote at once."""
    return holds_every_slot(ctx) and skip_analysis(ctx)


def holds_every_slot_and_gated(ctx: C) -> bool:
    """QueueJoined: every permit held and a start gate or confirm-rollout hooks."""
    return holds_every_slot(ctx) and start_gated(ctx)


#: Temporal patch: rollouts initialized before ``Queued`` existed replay without it.
QUEUED_PATCH = "canary-queued"


def queues_for_permits(ctx: C) -> bool:
    """Initialized: go through ``Queued`` (a history recorded before it existed does not)."""
    return not workflow.in_workflow() or workflow.patched(QUEUED_PATCH)


def can_retry(ctx: C) -> bool:
    """There is a revision to retry."""
    return ctx.data.revision is not None


# =============================================================================
# Effects: pure functions returning the new data
# =============================================================================


def _with(ctx: C, **changes: Any) -> CanaryData:
    return ctx.data.model_copy(update=changes)


def _appended(weights: list[int], weight: int) -> list[int]:
    """Record a weight the VirtualService now has (repeats collapse; bounded)."""
    if weights and weights[-1] == weight:
        return weights
    return [*weights, weight][-CanaryData.MAX_RECORDED :]


def restart(ctx: C) -> CanaryData:
    """A new revision: forget the analysis of the old one (Flagger restarts too)."""
    return CanaryData(
        attempt=ctx.data.attempt,
        stable_revision=ctx.data.stable_revision,
        applied_weights=ctx.data.applied_weights,
        approvals=ctx.data.approvals,
        message="new revision: restarting the analysis",
    )


def start_over(ctx: C) -> CanaryData:
    """A worker failed during promotion: find out again what runs where, from the start."""
    data = restart(ctx)
    reason = f"{ctx.event.activity} failed: {ctx.event.message}"
    return data.model_copy(update={"message": f"starting over: {reason}"})


def initialized(ctx: C) -> CanaryData:
    """Remember what is being rolled out; readiness deadlines start now."""
    event = ctx.event
    return _with(
        ctx,
        revision=event.revision,
        stable_revision=event.stable_revision,
        canary_weight=0,
        applied_weights=_appended(ctx.data.applied_weights, 0),
        phase_started_at=ctx.now,
        message=f"rolling out revision {event.revision} over {event.stable_revision}",
    )


def queued(ctx: C) -> CanaryData:
    """Waiting in the FIFO of one scope of the concurrency cap."""
    event = ctx.event
    return _with(ctx, message=f"queued for a rollout permit of {event.scope} (cap {event.limit})")


def slot_granted(ctx: C) -> CanaryData:
    """One permit more; the next scope (if any) is asked for on re-entering Queued."""
    scope = ctx.event.scope
    slots = ctx.data.slots if scope in ctx.data.slots else [*ctx.data.slots, scope]
    return _with(ctx, slots=slots, message=f"permit of {scope} granted")


def dequeued(ctx: C) -> CanaryData:
    """Every permit is held: readiness deadlines start now, not when the rollout queued."""
    message = ctx.data.message if not ctx.data.slots else "every rollout permit granted"
    return _with(ctx, phase_started_at=ctx.now, message=message)


def nothing_to_do(ctx: C) -> CanaryData:
    """The primary already runs the target's template."""
    event = ctx.event
    why = "created the primary from it" if event.bootstrapped else "the primary already runs it"
    return _with(
        ctx,
        revision=event.revision,
        stable_revision=event.revision,
        outcome="initialized" if event.bootstrapped else "up to date",
        message=f"revision {event.revision}: nothing to roll out ({why})",
    )


def refuse_rejected(ctx: C) -> CanaryData:
    """A revision that failed before stays failed until ``retry`` or a new revision."""
    event = ctx.event
    return _with(
        ctx,
        revision=event.revision,
        stable_revision=event.stable_revision,
        outcome="rejected",
        failure=f"revision {event.revision} was rejected before ({event.rejected_reason}); "
        "run `autopilot retry` to roll it out again",
    )


def record_hooks(ctx: C) -> CanaryData:
    """Remember what the confirm hooks said."""
    event = ctx.event
    message = "confirm hooks said yes" if event.ok else f"waiting on hooks: {event.failures()}"
    if event.ok and not approved(ctx):
        message = f"waiting for `autopilot approve` in {ctx.state}"
    return _with(ctx, hooks_confirmed=bool(event.ok), message=message)


def approve_gate(ctx: C) -> CanaryData:
    """Record a human approval of the current gate."""
    command = ctx.command
    assert command is not None
    approval = m.Approval(gate=ctx.state, by=command.by, at=ctx.now, reason=command.reason)
    waiting = "" if confirmed(ctx) else "; waiting on confirm hooks"
    return _with(
        ctx,
        gate_open=True,
        approvals=[*ctx.data.approvals, approval][-CanaryData.MAX_RECORDED :],
        message=f"{ctx.state} approved by {command.by}{waiting}",
    )


def approve_gate_ahead(ctx: C) -> CanaryData:
    """An approval given while the gate's rollout is analysing: kept for the gate."""
    gate = _gate_ahead(ctx)
    assert gate is not None
    return approve_gate(Ctx(spec=ctx.spec, data=ctx.data, state=gate, now=ctx.now, event=ctx.event))


def open_start(ctx: C) -> CanaryData:
    """Leave the start gate: readiness deadline starts, gate flags reset."""
    return _with(ctx, gate_open=False, hooks_confirmed=False, phase_started_at=ctx.now)


def approve_and_start(ctx: C) -> CanaryData:
    """Approval that opens the start gate."""
    ctx = _replace_data(ctx, approve_gate(ctx))
    return open_start(ctx)


def note_not_ready(ctx: C) -> CanaryData:
    """The canary is not ready yet; keep waiting (the deadline clock keeps running)."""
    return _with(
        ctx,
        phase_started_at=ctx.data.phase_started_at or ctx.now,
        message=f"waiting for the canary: {ctx.event.message}",
    )


def pre_rollout_failed(ctx: C) -> CanaryData:
    """A pre-rollout hook said no: a failed check, as in Flagger."""
    failures = ctx.event.hooks.failures() if ctx.event.hooks else ctx.event.message
    count = ctx.data.failed_checks + 1
    threshold = ctx.spec.analysis.threshold
    message = f"pre-rollout hooks failed ({count}/{threshold}): {failures}"
    failure = message if count >= threshold else None
    return _with(ctx, failed_checks=count, message=message, failure=failure)


def not_ready_in_time(ctx: C) -> CanaryData:
    """The progress deadline passed while waiting for a workload."""
    deadline = ctx.spec.progress_deadline_seconds
    return _with(
        ctx,
        failure=f"not ready within progressDeadlineSeconds ({deadline}s): {ctx.event.message}",
    )


def begin_steps(ctx: C) -> CanaryData:
    """The canary is ready and pre-rollout hooks passed: first step of the plan."""
    return _with(
        ctx,
        step=0,
        canary_weight=plan(ctx)[0],
        phase_started_at=None,
        gate_open=False,
        hooks_confirmed=False,
        message=f"canary ready; first step: weight {plan(ctx)[0]}",
    )


def record_weight(ctx: C) -> CanaryData:
    """The VirtualService has the weight of this step."""
    event = ctx.event
    note = f" ({event.conflicts} conflicts retried)" if event.conflicts else ""
    return _with(
        ctx,
        applied_weights=_appended(ctx.data.applied_weights, event.canary),
        weight_held=False,
        weight_since=ctx.now,
        phase_started_at=None,
        message=f"routing {event.primary}/{event.canary} (primary/canary){note}",
    )


def hold_weight(ctx: C) -> CanaryData:
    """The canary is not ready: the weight stays where it is."""
    return _with(
        ctx,
        weight_held=True,
        phase_started_at=ctx.data.phase_started_at or ctx.now,
        message=f"weight {ctx.data.canary_weight} held: {ctx.event.message}",
    )


def _analysed(ctx: C, **changes: Any) -> CanaryData:
    return _with(ctx, iterations=ctx.data.iterations + 1, last_analysis=ctx.event, **changes)


def _failing_metrics(ctx: C) -> list[m.MetricResult]:
    return [
        r
        for r in ctx.event.metrics
        if r.status == MetricStatus.FAIL
        or (r.status == MetricStatus.NO_DATA and r.no_data != m.NoDataPolicy.PASS)
    ]


def count_failure(ctx: C) -> CanaryData:
    """A failed check: count it; at the threshold, say why the rollout failed."""
    count = ctx.data.failed_checks + 1
    no_data = _outcome(ctx) == AnalysisOutcome.NO_DATA
    summary = ctx.event.summary()
    failure = (
        f"{count} failed checks (threshold {ctx.spec.analysis.threshold}): {summary}"
        if count >= ctx.spec.analysis.threshold
        else None
    )
    return _analysed(
        ctx,
        failed_checks=count,
        no_data_streak=ctx.data.no_data_streak + 1 if no_data else 0,
        failed_metrics=_failing_metrics(ctx),
        failure=failure,
        message=f"check failed ({count}/{ctx.spec.analysis.threshold}): {summary}",
    )


def count_sample_failure(ctx: C) -> CanaryData:
    """A watcher's sample failed the last allowed check: roll back now, not next interval."""
    breach = _breach(ctx)
    assert breach is not None
    count = ctx.data.failed_checks + 1
    return _with(
        ctx,
        failed_checks=count,
        failed_metrics=[breach],
        failure=f"{count} failed checks (threshold {ctx.spec.analysis.threshold}): "
        f"{breach.describe()} ({breach.message})",
    )


def rollback_hook_fired(ctx: C) -> CanaryData:
    """A rollback webhook asked to roll back."""
    event = ctx.event
    results = event.hooks if isinstance(event, m.AnalysisResult) else event.results
    names = ", ".join(r.name for r in results if r.type == HookType.ROLLBACK)
    reason = f"rollback requested by webhook {names}"
    if isinstance(event, m.AnalysisResult):
        return _analysed(ctx, failure=reason, message=reason)
    return _with(ctx, failure=reason, message=reason)


def hold_for_data(ctx: C) -> CanaryData:
    """No data for a 'hold' metric: keep the weight, check again next interval."""
    streak = ctx.data.no_data_streak + 1
    limit = ctx.spec.analysis.no_data_hold_intervals
    return _analysed(
        ctx,
        no_data_streak=streak,
        message=f"no data, holding weight {ctx.data.canary_weight} ({streak}/{limit}): "
        f"{ctx.event.summary()}",
    )


def record_pass(ctx: C) -> CanaryData:
    """A passed check at the current step."""
    return _analysed(ctx, no_data_streak=0, message=f"check passed: {ctx.event.summary()}")


def advance(ctx: C) -> CanaryData:
    """A passed check: next step of the plan; gates of the next step start closed."""
    data = record_pass(ctx) if isinstance(ctx.event, m.AnalysisResult) else ctx.data
    step = data.step + 1
    return data.model_copy(
        update={
            "step": step,
            "canary_weight": plan(ctx)[step],
            "gate_open": False,
            "hooks_confirmed": False,
            "message": f"advancing to weight {plan(ctx)[step]}",
        }
    )


def approve_and_advance(ctx: C) -> CanaryData:
    """Approval that opens the step gate."""
    return advance(_replace_data(ctx, approve_gate(ctx)))


def start_promotion(ctx: C) -> CanaryData:
    """Promotion begins (readiness deadline of the primary starts now)."""
    data = record_pass(ctx) if isinstance(ctx.event, m.AnalysisResult) else ctx.data
    by = f" by {ctx.command.by}" if ctx.command is not None else ""
    return data.model_copy(
        update={"phase_started_at": ctx.now, "message": f"promoting revision {data.revision}{by}"}
    )


def approve_and_promote(ctx: C) -> CanaryData:
    """Approval that opens the promotion gate."""
    return start_promotion(_replace_data(ctx, approve_gate(ctx)))


def record_promotion(ctx: C) -> CanaryData:
    """The primary got the template; note whether it is ready."""
    event = ctx.event
    if not event.ready:
        return _with(ctx, message=f"waiting for the primary: {event.message}")
    return _with(
        ctx,
        stable_revision=event.revision,
        phase_started_at=None,
        message=f"primary runs revision {event.revision}",
    )


def shift_back(ctx: C) -> CanaryData:
    """``stepWeightPromotion``: move the next slice of traffic back to the primary."""
    step = ctx.spec.analysis.step_weight_promotion or 100
    return _with(ctx, canary_weight=max(0, ctx.data.canary_weight - step))


def primary_not_ready(ctx: C) -> CanaryData:
    """The promoted primary did not become ready in time (traffic is left as it is)."""
    return _with(
        ctx,
        outcome="promotion stuck",
        failure=f"primary not ready within progressDeadlineSeconds after promotion: "
        f"{ctx.event.message}",
    )


def finished(ctx: C) -> CanaryData:
    """Promotion complete: 100/0 on the primary, which runs the new revision."""
    return _with(
        ctx,
        canary_weight=0,
        applied_weights=_appended(ctx.data.applied_weights, 0),
        stable_revision=ctx.data.revision,
        outcome="promoted",
        failure=None,
        message=f"revision {ctx.data.revision} promoted",
    )


def rolled_back(ctx: C) -> CanaryData:
    """Traffic is back on the primary."""
    return _with(
        ctx,
        canary_weight=0,
        applied_weights=_appended(ctx.data.applied_weights, 0),
        outcome="rolled back",
        message=f"rolled back: {ctx.data.failure or 'no reason recorded'}",
    )


def worker_failed(ctx: C) -> CanaryData:
    """A worker failed after its retries."""
    return _with(ctx, failure=f"{ctx.event.activity} failed: {ctx.event.message}")


def abort(ctx: C) -> CanaryData:
    """A human aborted the rollout."""
    command = ctx.command
    assert command is not None
    reason = f": {command.reason}" if command.reason else ""
    return _with(
        ctx,
        outcome="aborted",
        canary_weight=0,
        failure=f"aborted by {command.by} in {ctx.state}{reason}",
    )


def target_gone(ctx: C) -> CanaryData:
    """The target (or its Canary) was deleted."""
    return _with(ctx, outcome="aborted", canary_weight=0, failure=f"target {ctx.event.reason}")


def retry(ctx: C) -> CanaryData:
    """``retry``: roll the same revision out again, from the start."""
    command = ctx.command
    assert command is not None
    return CanaryData(
        attempt=ctx.data.attempt + 1,
        stable_revision=ctx.data.stable_revision,
        retry_of=ctx.data.revision,
        applied_weights=ctx.data.applied_weights,
        approvals=ctx.data.approvals,
        message=f"retry #{ctx.data.attempt + 1} by {command.by}",
    )


def _replace_data(ctx: C, data: CanaryData) -> C:
    return Ctx(spec=ctx.spec, data=data, state=ctx.state, now=ctx.now, event=ctx.event)


# =============================================================================
# What the Temporal UI shows
# =============================================================================


def details(ctx: C) -> str:
    """Markdown for the workflow's current details."""
    data, analysis = ctx.data, ctx.spec.analysis
    steps = plan(ctx)
    lines = [
        f"weight **{data.canary_weight}%** (step {min(data.step + 1, len(steps))}/{len(steps)}: "
        f"{', '.join(map(str, steps))})",
        f"revision `{data.revision}` over `{data.stable_revision}`",
        f"failed checks {data.failed_checks}/{analysis.threshold}, analyses {data.iterations}",
    ]
    if data.last_analysis is not None:
        lines.append(f"last analysis: {data.last_analysis.summary()}")
    if data.failure:
        lines.append(f"**failure**: {data.failure}")
    if data.message:
        lines.append(data.message)
    return "\n\n".join(lines)


#: Temporal patch: rollouts started before ``CanaryDataHash`` existed replay without it.
DATA_HASH_PATCH = "canary-data-hash"


def data_hash(ctx: C) -> str | None:
    """``CanaryDataHash``: 16 hex digits of the data; they change whenever the data does.

    Why: the status mirror reads one visibility listing per interval and asks for the full
    status only of the rollouts whose listing changed. State and weight alone miss what
    stays in one state (a failed pre-rollout hook, an analysis at the same weight, an
    approval at a gate), which ``kubectl get canaries`` then showed up to a minute late.
    None (nothing upserted) when replaying a history recorded before the attribute existed.
    """
    if workflow.in_workflow() and not workflow.patched(DATA_HASH_PATCH):
        return None
    return hashlib.sha256(ctx.data.model_dump_json().encode()).hexdigest()[:16]


# =============================================================================
# The machine
# =============================================================================

canary: Operator[CanarySpec, CanaryData] = Operator(
    "canary",
    spec=CanarySpec,
    data=CanaryData,
    initial="Initializing",
    events=[NewRevision, TargetDeleted, MetricSample],
    search_attributes={
        "CanaryWeight": lambda ctx: ctx.data.canary_weight,
        DATA_HASH_ATTRIBUTE: data_hash,
    },
    details=details,
    description=(
        "Progressive delivery on Istio, at Flagger's level: shifts traffic from the stable "
        "'-primary' Deployment to the user's Deployment step by step, checks Prometheus "
        "metrics and webhooks every interval, promotes or rolls back, and waits at manual "
        "gates for `autopilot approve`. One durable workflow per Deployment."
    ),
)

# -- states -------------------------------------------------------------------

canary.state(
    "Initializing",
    run=[initialize],
    doc="create -primary, Services, DestinationRules, VirtualService; route 100/0",
)
canary.state(
    "Queued",
    run=[request_slot],
    doc="waits for a permit of the concurrency cap (per namespace, then global); none: passes",
)
canary.state(
    "Waiting",
    settled=True,
    run=[confirm_rollout],
    after=interval,
    then="Waiting",
    doc="start gate: confirm-rollout hooks (polled every interval) and/or approval",
)
canary.state(
    "Starting",
    run=[start],
    after=interval,
    then="Starting",
    doc="canary scaled up; waits until ready, then pre-rollout hooks",
)
canary.state(
    "Progressing",
    run=[set_weight, notify],
    after=interval,
    then="Analysing",
    doc="the step's weight is on the VirtualService; one interval of traffic",
)
canary.state("Analysing", run=[analyse], doc="rollout and rollback hooks, metric checks")
canary.state(
    "AwaitingStep",
    settled=True,
    run=[confirm_step],
    after=interval,
    then="Analysing",
    doc="step gate: confirm-traffic-increase hooks and/or approval; analysis continues",
)
canary.state(
    "AwaitingPromotion",
    settled=True,
    run=[confirm_promotion],
    after=interval,
    then="Analysing",
    doc="promotion gate: confirm-promotion hooks and/or approval; analysis continues",
)
canary.state(
    "Promoting",
    run=[set_weight, promote, notify],
    after=interval,
    doc="template copied to -primary; with stepWeightPromotion, traffic moves back in steps",
)
canary.state(
    "Finalising",
    run=[finalise],
    after=interval,
    then="Finalising",
    doc="route 100/0 to the promoted primary, scale the canary to zero",
)
canary.state("Succeeded", final=True, run=[post_rollout, notify], doc="promoted")
canary.state(
    "RollingBack",
    run=[rollback],
    after=interval,
    then="RollingBack",
    doc="route 100/0 at once, scale the canary down, mark the revision rejected",
)
canary.state(
    "Failed",
    settled=True,
    failed=True,
    run=[post_rollout, notify],
    doc="rolled back; waits for `retry`, `promote` or a new revision",
)
canary.state(
    "Aborted",
    final=True,
    failed=True,
    run=[rollback, post_rollout, notify],
    doc="aborted by a human or because the target was deleted; traffic back on the primary",
)

# -- anywhere -----------------------------------------------------------------

canary.on(ANY, NewRevision, go="Initializing", when=is_new_revision, do=restart)
canary.on(ANY, TargetDeleted, go="Aborted", do=target_gone)
canary.on(ANY, Command("abort"), go="Aborted", do=abort)

PROMOTABLE = ["Waiting", "Starting", "Progressing", "Analysing", "AwaitingStep"]
canary.on(
    [*PROMOTABLE, "AwaitingPromotion", "Failed"],
    Command("promote"),
    go="Promoting",
    do=start_promotion,
)

# -- Initializing -------------------------------------------------------------

canary.on("Initializing", Initialized, go="Failed", when=rejected, do=refuse_rejected)
canary.on("Initializing", Initialized, go="Succeeded", when=nothing_to_roll_out, do=nothing_to_do)
canary.on("Initializing", Initialized, go="Queued", when=queues_for_permits, do=initialized)
# Replaying a rollout initialized before the cap existed (see queues_for_permits):
canary.on("Initializing", Initialized, go="Promoting", when=skip_analysis, do=initialized)
canary.on("Initializing", Initialized, go="Waiting", when=start_gated, do=initialized)
canary.on("Initializing", Initialized, go="Starting", do=initialized)
canary.on("Initializing", ActivityFailed, go="Failed", do=worker_failed)

# -- Queued -------------------------------------------------------------------

canary.on("Queued", QueueJoined, go="Promoting", when=holds_every_slot_and_skip, do=dequeued)
canary.on("Queued", QueueJoined, go="Waiting", when=holds_every_slot_and_gated, do=dequeued)
canary.on("Queued", QueueJoined, go="Starting", when=holds_every_slot, do=dequeued)
canary.on("Queued", QueueJoined, go=None, do=queued)
canary.on("Queued", SlotGranted, go="Queued", do=slot_granted)
canary.on("Queued", ActivityFailed, go="Failed", do=worker_failed)

# -- the gates: Waiting, AwaitingStep, AwaitingPromotion ----------------------

GATES = ["Waiting", "AwaitingStep", "AwaitingPromotion"]
approve = Command("approve")  # opens the gate the rollout waits at

canary.on(GATES, HooksRan, go="RollingBack", when=rollback_asked, do=rollback_hook_fired)
canary.on("Waiting", HooksRan, go="Starting", when=hooks_open_the_gate, do=open_start)
canary.on("AwaitingStep", HooksRan, go="Progressing", when=hooks_open_the_gate, do=advance)
canary.on(
    "AwaitingPromotion", HooksRan, go="Promoting", when=hooks_open_the_gate, do=start_promotion
)
canary.on(GATES, HooksRan, go=None, do=record_hooks)

canary.on("Waiting", approve, go="Starting", when=confirmed, do=approve_and_start)
canary.on("AwaitingStep", approve, go="Progressing", when=confirmed, do=approve_and_advance)
canary.on("AwaitingPromotion", approve, go="Promoting", when=confirmed, do=approve_and_promote)
canary.on(GATES, approve, go=None, do=approve_gate)
canary.on("Analysing", approve, go=None, when=at_a_gate, do=approve_gate_ahead)

canary.on("Waiting", ActivityFailed, go="Failed", do=worker_failed)

# -- Starting -----------------------------------------------------------------

canary.on("Starting", Started, go="Progressing", when=ready_and_hooks_passed, do=begin_steps)
canary.on(
    "Starting", Started, go="RollingBack", when=hooks_failed_at_threshold, do=pre_rollout_failed
)
canary.on("Starting", Started, go=None, when=ready, do=pre_rollout_failed)
canary.on("Starting", Started, go="RollingBack", when=not_ready_past_deadline, do=not_ready_in_time)
canary.on("Starting", Started, go=None, do=note_not_ready)

# -- Progressing ⇄ Analysing --------------------------------------------------

canary.on(
    "Progressing",
    WeightApplied,
    go="RollingBack",
    when=weight_held_past_deadline,
    do=not_ready_in_time,
)
canary.on("Progressing", WeightApplied, go=None, when=weight_held, do=hold_weight)
canary.on(["Progressing", "Promoting"], WeightApplied, go=None, do=record_weight)

canary.on(
    "Analysing", AnalysisResult, go="RollingBack", when=rollback_asked, do=rollback_hook_fired
)
canary.on("Analysing", AnalysisResult, go="RollingBack", when=fails_at_threshold, do=count_failure)
canary.on("Analysing", AnalysisResult, go="Progressing", when=counts_as_failure, do=count_failure)
canary.on("Analysing", AnalysisResult, go="Progressing", when=no_data_held, do=hold_for_data)
canary.on("Analysing", AnalysisResult, go="Progressing", when=last_weight_was_held, do=record_pass)
canary.on(
    "Analysing",
    AnalysisResult,
    go="AwaitingPromotion",
    when=passed_last_step_gated,
    do=record_pass,
)
canary.on("Analysing", AnalysisResult, go="Promoting", when=at_last_step, do=start_promotion)
canary.on("Analysing", AnalysisResult, go="AwaitingStep", when=passed_step_gated, do=record_pass)
canary.on("Analysing", AnalysisResult, go="Progressing", do=advance)

canary.on(
    ["Progressing", "AwaitingStep", "AwaitingPromotion"],
    MetricSample,
    go="RollingBack",
    when=sample_fails_at_threshold,
    do=count_sample_failure,
)
canary.on(
    ["Starting", "Progressing", "Analysing", "AwaitingStep", "AwaitingPromotion"],
    ActivityFailed,
    go="RollingBack",
    do=worker_failed,
)

# -- Promoting → Finalising → Succeeded ---------------------------------------

canary.on("Promoting", Promoted, go="Finalising", when=promoted_and_drained, do=record_promotion)
canary.on("Promoting", Promoted, go="Failed", when=not_ready_past_deadline, do=primary_not_ready)
canary.on("Promoting", Promoted, go=None, do=record_promotion)
canary.on("Promoting", Timeout, go="Promoting", when=primary_promoted, do=shift_back)
canary.on("Promoting", Timeout, go="Promoting")
canary.on("Promoting", ActivityFailed, go="Initializing", do=start_over)
canary.on("Finalising", Finalised, go="Succeeded", do=finished)

# -- RollingBack → Failed → (retry) -------------------------------------------

canary.on("RollingBack", RolledBack, go="Failed", do=rolled_back)
canary.on(
    "Failed",
    Command("retry"),
    go="Initializing",
    when=can_retry,
    do=retry,
)

canary.check()


@register
@workflow.defn(name="canary")
class CanaryWorkflow(OperatorWorkflow):
    """One canary rollout per Deployment; ID ``canary/<namespace>/<name>``."""

    operator = canary

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the canary machine until Succeeded or Aborted."""
        return await self.run_operator(input)
