"""The canary's workers: the activities of ``activities/canary``, named, never imported.

Each reference carries the event the worker returns, its timeout and its retries; the
machine (``machine.py``) says which state runs which.
"""

from datetime import timedelta

from temporalio import workflow

from models.canary import (
    AnalysisResult,
    CanaryData,
    CanarySpec,
    Finalised,
    HooksRan,
    HookType,
    Initialized,
    Promoted,
    RolledBack,
    Started,
    WeightApplied,
)
from models.rollout_slots import QueueJoined
from workflows.engine import ActivityRef, Ctx

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


def quick_analysis(ctx: Ctx[CanarySpec, CanaryData]) -> bool:
    """Whether an analysis is only queries: no ``rollout`` or ``rollback`` webhook to call.

    Such an analysis (and every weight change) runs as a local activity, so a step is one
    workflow task; a webhook may take minutes, and commands must not wait that long.
    """
    hooks = ctx.spec.analysis.hooks
    return not hooks(HookType.ROLLOUT) and not hooks(HookType.ROLLBACK)


set_weight = ActivityRef(
    "canary.set_weight",
    returns=WeightApplied,
    timeout=_QUICK,
    summary="set route weights",
    local=True,
)
analyse = ActivityRef(
    "canary.analyse",
    returns=AnalysisResult,
    timeout=_HOOKS,
    summary="hooks and metric checks",
    local=quick_analysis,
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

#: Temporal patch: runs recorded before it ran ``canary.notify`` in every state that names
#: it, with or without ``event`` webhooks to call.
NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH = "canary-notify-only-with-event-hooks"


def has_event_hooks(ctx: Ctx[CanarySpec, CanaryData]) -> bool:
    """Whether the spec names ``event`` webhooks, the only thing the notifier sends.

    Without any, running it cost every step an activity and a workflow task for nothing, on
    the path from one step's timer to the next weight (``docs/performance.md``).
    """
    if ctx.spec.analysis.hooks(HookType.EVENT):
        return True
    return workflow.in_workflow() and not workflow.patched(NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH)


notify = ActivityRef(
    "canary.notify", timeout=_QUICK, summary="event webhooks", when=has_event_hooks
)
