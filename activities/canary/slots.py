"""The workers of the concurrency cap: ask for and give back rollout permits, and the two
activities the rollout-slots semaphore runs (deliver a grant, find vanished holders).

The cap is a platform policy, not a per-app field, so it is read from the worker's
environment at every request (``AUTOPILOT_CANARY_MAX_CONCURRENT`` and
``AUTOPILOT_CANARY_MAX_CONCURRENT_PER_NAMESPACE``; unset means no cap). Every activity
talks to Temporal through the client of the worker that runs it (``activity.client()``), so
nothing is configured twice and tests need nothing more than a worker.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.canary import CanaryStep
from models.operator import EVENT_SIGNAL
from models.rollout_slots import (
    ACQUIRE_SIGNAL,
    CLOSED_ACTIVITY,
    GLOBAL_SCOPE,
    GRANT_ACTIVITY,
    RELEASE_SIGNAL,
    SLOTS_WORKFLOW,
    QueueJoined,
    SlotGrant,
    SlotRelease,
    SlotRequest,
    SlotsInput,
    granted_envelope,
    namespace_scope,
    slots_workflow_id,
)
from service.settings import CapSettings
from service.starts import WORKFLOW_TASK_TIMEOUT


def _not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


@activity.defn(name="canary.request_slot")
async def request_slot(step: CanaryStep) -> QueueJoined:
    """Ask for the next permit this rollout lacks (signal-with-start of its semaphore).

    Returns ``QueueJoined(scope=None)`` when it holds every permit it needs, at once when
    no cap is configured. Idempotent: the semaphore answers a repeated request again.
    """
    settings = CapSettings()
    for scope, limit in settings.scopes(step.target.namespace):
        if scope in step.data.slots:
            continue
        await activity.client().start_workflow(
            SLOTS_WORKFLOW,
            SlotsInput(scope=scope, limit=limit, check_every_s=settings.slots_check_seconds),
            id=slots_workflow_id(scope),
            task_queue=activity.info().task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            static_summary=f"rollout permits of {scope} (cap {limit})",
            start_signal=ACQUIRE_SIGNAL,
            start_signal_args=[
                SlotRequest(holder=step.workflow_id, request_id=step.step_key, limit=limit)
            ],
        )
        return QueueJoined(scope=scope, limit=limit)
    return QueueJoined(scope=None)


async def release_permits(step: CanaryStep) -> None:
    """Give back every permit of this rollout, or leave the queues (unknown: ignored).

    Called by ``canary.post_rollout_hooks``, which every end of a rollout (Succeeded,
    Failed, Aborted) runs. Both scopes are released whatever is configured now, so changing
    the caps never strands a permit; a semaphore that does not exist is nothing to release.
    """
    for scope in (namespace_scope(step.target.namespace), GLOBAL_SCOPE):
        handle = activity.client().get_workflow_handle(slots_workflow_id(scope))
        try:
            await handle.signal(RELEASE_SIGNAL, SlotRelease(holder=step.workflow_id))
        except RPCError as error:
            if not _not_found(error):
                raise


@activity.defn(name=GRANT_ACTIVITY)
async def grant(grant: SlotGrant) -> bool:
    """Signal ``SlotGranted`` to the holder; False when its workflow is closed or gone.

    Only semaphores whose history predates ``rollout-slots-grant-by-signal`` call it; newer
    ones signal the rollout themselves. Remove it once no such history is left.
    """
    envelope = granted_envelope(grant, datetime.now(UTC))
    try:
        await activity.client().get_workflow_handle(grant.holder).signal(EVENT_SIGNAL, envelope)
    except RPCError as error:
        if _not_found(error):
            return False
        raise
    return True


@activity.defn(name=CLOSED_ACTIVITY)
async def closed_holders(workflow_ids: list[str]) -> list[str]:
    """The workflows among ``workflow_ids`` that are no longer running (or do not exist)."""
    closed: list[str] = []
    for workflow_id in workflow_ids:
        try:
            description = await activity.client().get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if _not_found(error):
                closed.append(workflow_id)
                continue
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            closed.append(workflow_id)
    return closed
