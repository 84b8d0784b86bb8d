"""The canary's step into git: a rollback recorded by pull request (docs/gitops.md).

Traffic weights stay runtime state; only the rollback is written back, so that a GitOps
engine does not re-apply the rejected revision. The worker runs in ``Failed`` after a
rollback, behind the Temporal patch :data:`GITOPS_ROLLBACK_PATCH` (evaluated as the state is
entered), so rollouts recorded before it replay without it.
"""

from datetime import timedelta

from temporalio import workflow

from models.canary import CanaryData, CanarySpec
from models.canary_git import RollbackRecorded
from workflows.canary.guards import C
from workflows.engine import ActivityRef, Ctx

#: Temporal patch: rollbacks from before the git record existed replay without it.
GITOPS_ROLLBACK_PATCH = "canary-gitops-rollback"


def records_rollback(ctx: C) -> bool:
    """Failed after a rollback (not a rejected revision refused again): record it in git."""
    if ctx.data.outcome != "rolled back":
        return False
    return not workflow.in_workflow() or workflow.patched(GITOPS_ROLLBACK_PATCH)


record_rollback = ActivityRef(
    "canary.record_rollback",
    returns=RollbackRecorded,
    timeout=timedelta(seconds=120),
    max_attempts=5,
    summary="pull request setting the image in git back to the stable revision",
    when=records_rollback,
)


def rollback_recorded(ctx: Ctx[CanarySpec, CanaryData, RollbackRecorded]) -> CanaryData:
    """Say in the message where git stands."""
    event = ctx.event
    if event.outcome == "not-configured":  # a cluster without GitOps: nothing to say
        return ctx.data
    if event.outcome == "unchanged":
        note = "git already names the stable images"
    else:
        note = f"pull request #{event.number} sets the images in git back: {event.url}"
    message = f"{ctx.data.message}; {note}" if ctx.data.message else note
    return ctx.data.model_copy(update={"message": message})
