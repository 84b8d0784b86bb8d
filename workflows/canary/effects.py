"""The canary's effects: pure functions that return the machine's new data.

An effect runs when its transition is taken; like a guard, it names the event it handles
in its type. No I/O, no clock but ``ctx.now``.
"""

from typing import Any

from models import canary as m
from models.canary import AnalysisOutcome, CanaryData, HookType, MetricStatus
from models.operator import CommandRequest
from models.rollout_slots import QueueJoined, SlotGranted
from workflows.canary.guards import (
    C,
    On,
    analysis_outcome,
    approved,
    confirmed,
    gate_ahead,
    plan,
    sample_breach,
    switches_to_the_canary,
)
from workflows.engine import ActivityFailed, Ctx


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


def start_over(ctx: On[ActivityFailed]) -> CanaryData:
    """A worker failed during promotion: find out again what runs where, from the start."""
    data = restart(ctx)
    reason = f"{ctx.event.activity} failed: {ctx.event.message}"
    return data.model_copy(update={"message": f"starting over: {reason}"})


def initialized(ctx: On[m.Initialized]) -> CanaryData:
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


def queued(ctx: On[QueueJoined]) -> CanaryData:
    """Waiting in the FIFO of one scope of the concurrency cap."""
    event = ctx.event
    return _with(ctx, message=f"queued for a rollout permit of {event.scope} (cap {event.limit})")


def slot_granted(ctx: On[SlotGranted]) -> CanaryData:
    """One permit more; the next scope (if any) is asked for on re-entering Queued."""
    scope = ctx.event.scope
    slots = ctx.data.slots if scope in ctx.data.slots else [*ctx.data.slots, scope]
    return _with(ctx, slots=slots, message=f"permit of {scope} granted")


def dequeued(ctx: On[QueueJoined]) -> CanaryData:
    """Every permit is held: readiness deadlines start now, not when the rollout queued."""
    message = ctx.data.message if not ctx.data.slots else "every rollout permit granted"
    return _with(ctx, phase_started_at=ctx.now, message=message)


def nothing_to_do(ctx: On[m.Initialized]) -> CanaryData:
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


def refuse_rejected(ctx: On[m.Initialized]) -> CanaryData:
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


def record_hooks(ctx: On[m.HooksRan]) -> CanaryData:
    """Remember what the confirm hooks said."""
    event = ctx.event
    message = "confirm hooks said yes" if event.ok else f"waiting on hooks: {event.failures()}"
    if event.ok and not approved(ctx):
        message = f"waiting for `autopilot approve` in {ctx.state}"
    return _with(ctx, hooks_confirmed=bool(event.ok), message=message)


def approve_gate(ctx: On[CommandRequest]) -> CanaryData:
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


def approve_gate_ahead(ctx: On[CommandRequest]) -> CanaryData:
    """An approval given while the gate's rollout is analysing: kept for the gate."""
    gate = gate_ahead(ctx)
    assert gate is not None
    return approve_gate(Ctx(spec=ctx.spec, data=ctx.data, state=gate, now=ctx.now, event=ctx.event))


def open_start(ctx: C) -> CanaryData:
    """Leave the start gate: readiness deadline starts, gate flags reset."""
    return _with(ctx, gate_open=False, hooks_confirmed=False, phase_started_at=ctx.now)


def approve_and_start(ctx: On[CommandRequest]) -> CanaryData:
    """Approval that opens the start gate."""
    ctx = _replace_data(ctx, approve_gate(ctx))
    return open_start(ctx)


def note_not_ready(ctx: On[m.Started]) -> CanaryData:
    """The canary is not ready yet; keep waiting (the deadline clock keeps running)."""
    return _with(
        ctx,
        phase_started_at=ctx.data.phase_started_at or ctx.now,
        message=f"waiting for the canary: {ctx.event.message}",
    )


def pre_rollout_failed(ctx: On[m.Started]) -> CanaryData:
    """A pre-rollout hook said no: a failed check, as in Flagger."""
    failures = ctx.event.hooks.failures() if ctx.event.hooks else ctx.event.message
    count = ctx.data.failed_checks + 1
    threshold = ctx.spec.analysis.threshold
    message = f"pre-rollout hooks failed ({count}/{threshold}): {failures}"
    failure = message if count >= threshold else None
    return _with(ctx, failed_checks=count, message=message, failure=failure)


def not_ready_in_time(ctx: On[m.Started | m.WeightApplied]) -> CanaryData:
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


def record_weight(ctx: On[m.WeightApplied]) -> CanaryData:
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


def hold_weight(ctx: On[m.WeightApplied]) -> CanaryData:
    """The canary is not ready: the weight stays where it is."""
    return _with(
        ctx,
        weight_held=True,
        phase_started_at=ctx.data.phase_started_at or ctx.now,
        message=f"weight {ctx.data.canary_weight} held: {ctx.event.message}",
    )


def _analysed(ctx: On[m.AnalysisResult | m.HooksRan], **changes: Any) -> CanaryData:
    return _with(ctx, iterations=ctx.data.iterations + 1, last_analysis=ctx.event, **changes)


def _failing_metrics(ctx: On[m.AnalysisResult]) -> list[m.MetricResult]:
    return [
        r
        for r in ctx.event.metrics
        if not r.dry_run
        and (
            r.status == MetricStatus.FAIL
            or (r.status == MetricStatus.NO_DATA and r.no_data != m.NoDataPolicy.PASS)
        )
    ]


def count_failure(ctx: On[m.AnalysisResult]) -> CanaryData:
    """A failed check: count it; at the threshold, say why the rollout failed."""
    count = ctx.data.failed_checks + 1
    no_data = analysis_outcome(ctx) == AnalysisOutcome.NO_DATA
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


def count_sample_failure(ctx: On[m.MetricSample]) -> CanaryData:
    """A watcher's sample failed the last allowed check: roll back now, not next interval."""
    breach = sample_breach(ctx)
    assert breach is not None
    count = ctx.data.failed_checks + 1
    return _with(
        ctx,
        failed_checks=count,
        failed_metrics=[breach],
        failure=f"{count} failed checks (threshold {ctx.spec.analysis.threshold}): "
        f"{breach.describe()} ({breach.message})",
    )


def rollback_hook_fired(ctx: On[m.HooksRan | m.AnalysisResult]) -> CanaryData:
    """A rollback webhook asked to roll back."""
    event = ctx.event
    results = event.hooks if isinstance(event, m.AnalysisResult) else event.results
    names = ", ".join(r.name for r in results if r.type == HookType.ROLLBACK)
    reason = f"rollback requested by webhook {names}"
    if isinstance(event, m.AnalysisResult):
        return _analysed(ctx, failure=reason, message=reason)
    return _with(ctx, failure=reason, message=reason)


def hold_for_data(ctx: On[m.AnalysisResult]) -> CanaryData:
    """No data for a 'hold' metric: keep the weight, check again next interval."""
    streak = ctx.data.no_data_streak + 1
    limit = ctx.spec.analysis.no_data_hold_intervals
    return _analysed(
        ctx,
        no_data_streak=streak,
        message=f"no data, holding weight {ctx.data.canary_weight} ({streak}/{limit}): "
        f"{ctx.event.summary()}",
    )


def record_pass(ctx: On[m.AnalysisResult]) -> CanaryData:
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


def approve_and_advance(ctx: On[CommandRequest]) -> CanaryData:
    """Approval that opens the step gate."""
    return advance(_replace_data(ctx, approve_gate(ctx)))


def start_promotion(ctx: C) -> CanaryData:
    """Promotion begins (readiness deadline of the primary starts now).

    A blue/green switches all traffic to the analysed canary while the primary rolls out
    (:func:`~workflows.canary.guards.switches_to_the_canary`).
    """
    data = record_pass(ctx) if isinstance(ctx.event, m.AnalysisResult) else ctx.data
    by = f" by {ctx.command.by}" if ctx.command is not None else ""
    update: dict[str, Any] = {
        "phase_started_at": ctx.now,
        "message": f"promoting revision {data.revision}{by}",
    }
    if switches_to_the_canary(ctx):
        update["canary_weight"] = 100
        update["message"] += ": all traffic on the canary while the primary rolls out"
    return data.model_copy(update=update)


def approve_and_promote(ctx: On[CommandRequest]) -> CanaryData:
    """Approval that opens the promotion gate."""
    return start_promotion(_replace_data(ctx, approve_gate(ctx)))


def record_promotion(ctx: On[m.Promoted]) -> CanaryData:
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


def primary_not_ready(ctx: On[m.Promoted]) -> CanaryData:
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


def worker_failed(ctx: On[ActivityFailed]) -> CanaryData:
    """A worker failed after its retries."""
    return _with(ctx, failure=f"{ctx.event.activity} failed: {ctx.event.message}")


def abort(ctx: On[CommandRequest]) -> CanaryData:
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


def target_gone(ctx: On[m.TargetDeleted]) -> CanaryData:
    """The target (or its Canary) was deleted."""
    return _with(ctx, outcome="aborted", canary_weight=0, failure=f"target {ctx.event.reason}")


def retry(ctx: On[CommandRequest]) -> CanaryData:
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
