"""The canary's timers and guards: pure questions about the spec, the data and the event.

Each guard names in its type the event it is asked about (``On[Started]``), and the
machine's ``on()`` is checked by mypy against the trigger it is declared for. No I/O, no
clock but ``ctx.now``.
"""

from datetime import timedelta
from typing import TypeVar, cast

from temporalio import workflow

from models import canary as m
from models.canary import AnalysisOutcome, CanaryData, CanarySpec, MetricStatus
from models.rollout_slots import QueueJoined
from workflows.canary.gates import GATES, PROMOTION, START, STEP
from workflows.engine import Ctx

#: What a timer, the details or a guard about no event in particular sees.
C = Ctx[CanarySpec, CanaryData]
E = TypeVar("E")
#: What a guard or effect sees for one trigger, e.g. ``On[m.Started]``.
On = Ctx[CanarySpec, CanaryData, E]


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


def is_new_revision(ctx: On[m.NewRevision]) -> bool:
    """A NewRevision for a template other than the one being handled."""
    revision = ctx.event.revision
    return revision is None or revision != ctx.data.revision


def rejected(ctx: On[m.Initialized]) -> bool:
    """Initialized: this revision failed or was aborted before (``retry`` overrides)."""
    return bool(ctx.event.rejected)


def nothing_to_roll_out(ctx: On[m.Initialized]) -> bool:
    """Initialized: the primary already runs this revision (or was just created from it)."""
    return not ctx.event.needs_rollout


def skip_analysis(ctx: C) -> bool:
    """``skipAnalysis: true``: promote at once."""
    return ctx.spec.skip_analysis


def start_gated(ctx: C) -> bool:
    """A start gate or confirm-rollout hooks must say yes before the canary is scaled up."""
    return START.closed(ctx.spec)


def step_gated(ctx: C) -> bool:
    """A step gate or confirm-traffic-increase hooks must say yes before each increase."""
    return STEP.closed(ctx.spec)


def promotion_gated(ctx: C) -> bool:
    """A promotion gate or confirm-promotion hooks must say yes before promotion."""
    return PROMOTION.closed(ctx.spec)


def approved(ctx: C) -> bool:
    """The manual gate of the current state is open (approved, or not configured)."""
    return ctx.data.gate_open or not GATES[ctx.state].needs_approval(ctx.spec)


def confirmed(ctx: C) -> bool:
    """The confirm hooks of the current state said yes (or there are none)."""
    return ctx.data.hooks_confirmed or not GATES[ctx.state].has_hooks(ctx.spec)


def hooks_open_the_gate(ctx: On[m.HooksRan]) -> bool:
    """HooksRan: the hooks said yes and the manual gate is open too."""
    return bool(ctx.event.ok) and approved(ctx)


def rollback_asked(ctx: On[m.HooksRan | m.AnalysisResult]) -> bool:
    """A ``rollback`` webhook answered yes."""
    return bool(ctx.event.rollback_requested)


def ready_and_hooks_passed(ctx: On[m.Started]) -> bool:
    """Started: the canary is ready and every pre-rollout hook said yes."""
    return bool(ctx.event.ready) and ctx.event.hooks is not None and ctx.event.hooks.ok


def hooks_failed_at_threshold(ctx: On[m.Started]) -> bool:
    """Started: a pre-rollout hook failed and that makes ``threshold`` failed checks."""
    return bool(ctx.event.ready) and threshold_reached(ctx)


def ready(ctx: On[m.Started]) -> bool:
    """Started: the canary is ready (so its pre-rollout hooks failed)."""
    return bool(ctx.event.ready)


def not_ready_past_deadline(ctx: On[m.Started | m.Promoted]) -> bool:
    """Started / Promoted: not ready, and the progress deadline has passed."""
    return not ctx.event.ready and overdue(ctx)


def weight_held_past_deadline(ctx: On[m.WeightApplied]) -> bool:
    """WeightApplied: not raised (canary not ready) for longer than the progress deadline."""
    return bool(ctx.event.held) and overdue(ctx)


def weight_held(ctx: On[m.WeightApplied]) -> bool:
    """WeightApplied: the weight was not raised because the canary is not ready."""
    return bool(ctx.event.held)


def analysis_outcome(ctx: On[m.AnalysisResult]) -> AnalysisOutcome:
    return cast(AnalysisOutcome, ctx.event.outcome)


def counts_as_failure(ctx: On[m.AnalysisResult]) -> bool:
    """AnalysisResult: a failed check, or no data held for ``noDataHoldIntervals`` already."""
    outcome = analysis_outcome(ctx)
    limit = ctx.spec.analysis.no_data_hold_intervals
    return outcome == AnalysisOutcome.FAILED or (
        outcome == AnalysisOutcome.NO_DATA and ctx.data.no_data_streak >= limit
    )


def threshold_reached(ctx: C) -> bool:
    """This failure makes ``analysis.threshold`` failed checks."""
    return ctx.data.failed_checks + 1 >= ctx.spec.analysis.threshold


def sample_breach(ctx: On[m.MetricSample]) -> m.MetricResult | None:
    """MetricSample: the metric's result if this fresh sample is out of range, else None."""
    sample = ctx.event
    metric = next((x for x in ctx.spec.analysis.metrics if x.name == sample.name), None)
    since = ctx.data.weight_since
    if metric is None or metric.dry_run or sample.value is None or since is None:
        return None  # unknown or dry-run metric, no data (judged per interval), no weight yet
    if sample.at <= since:
        return None  # older than the weight
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


def sample_fails_at_threshold(ctx: On[m.MetricSample]) -> bool:
    """MetricSample: out of range, and it would be the ``threshold``-th failed check."""
    return sample_breach(ctx) is not None and threshold_reached(ctx)


def fails_at_threshold(ctx: On[m.AnalysisResult]) -> bool:
    """AnalysisResult: a failure that reaches the threshold: roll back."""
    return counts_as_failure(ctx) and threshold_reached(ctx)


def no_data_held(ctx: On[m.AnalysisResult]) -> bool:
    """AnalysisResult: only 'hold' metrics lacked data, within the hold limit."""
    return analysis_outcome(ctx) == AnalysisOutcome.NO_DATA


def last_weight_was_held(ctx: C) -> bool:
    """The weight of this step never reached the VirtualService: do not advance past it."""
    return ctx.data.weight_held


def passed_last_step_gated(ctx: C) -> bool:
    """Passed at the last step, and promotion has a gate."""
    return at_last_step(ctx) and promotion_gated(ctx)


def passed_step_gated(ctx: C) -> bool:
    """Passed before the last step, and every increase has a gate."""
    return not at_last_step(ctx) and step_gated(ctx)


#: Temporal patch: a blue/green promoted before it switched traffic replays without it.
BLUE_GREEN_SWITCH_PATCH = "canary-blue-green-switches-traffic"


def switches_to_the_canary(ctx: C) -> bool:
    """Promoting a blue/green after its analyses: all traffic goes to the canary first.

    Flagger's order: the analysed canary (green) takes the traffic while the primary (blue)
    rolls out the new template, so no request meets a pod being replaced; then traffic
    returns to the primary. Not from states where the canary may not be up (a ``promote``
    from ``Failed``, ``Waiting`` or ``Starting``): there traffic stays on the primary.
    Rollouts whose history predates the patch replay without the switch.
    """
    if not ctx.spec.analysis.blue_green or ctx.state in ("Failed", "Waiting", "Starting"):
        return False
    return not workflow.in_workflow() or workflow.patched(BLUE_GREEN_SWITCH_PATCH)


def promoted_and_drained(ctx: On[m.Promoted]) -> bool:
    """Promoted: the primary is ready and no traffic is left to move back to it."""
    return bool(ctx.event.ready) and (
        ctx.spec.analysis.step_weight_promotion is None or ctx.data.canary_weight == 0
    )


def primary_promoted(ctx: C) -> bool:
    """The primary runs the new revision (so weight may move back to it)."""
    return ctx.data.stable_revision == ctx.data.revision and ctx.data.revision is not None


def gate_ahead(ctx: C) -> str | None:
    """In Analysing: the gate the rollout waits at between analyses, if any."""
    if at_last_step(ctx):
        return PROMOTION.state if promotion_gated(ctx) else None
    return STEP.state if step_gated(ctx) else None


def at_a_gate(ctx: C) -> bool:
    """Analysing between two visits of a gate: an approval now is for that gate."""
    return gate_ahead(ctx) is not None


def holds_every_slot(ctx: On[QueueJoined]) -> bool:
    """QueueJoined: no permit is missing (or no cap is configured)."""
    return ctx.event.scope is None


def holds_every_slot_and_skip(ctx: On[QueueJoined]) -> bool:
    """QueueJoined: every permit held and ``skipAnalysis``: promote at once."""
    return holds_every_slot(ctx) and skip_analysis(ctx)


def holds_every_slot_and_gated(ctx: On[QueueJoined]) -> bool:
    """QueueJoined: every permit held and a start gate or confirm-rollout hooks."""
    return holds_every_slot(ctx) and start_gated(ctx)


def can_retry(ctx: C) -> bool:
    """There is a revision to retry."""
    return ctx.data.revision is not None
