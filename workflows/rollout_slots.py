"""The rollout-slots semaphore: a tiny durable workflow that caps concurrent canary rollouts.

One workflow per scope (``rollout-slots/global``, ``rollout-slots/ns/<namespace>``) holds
the workflow IDs that own a permit and a FIFO of those waiting. Canaries ask with an
``acquire`` signal (sent by an activity with signal-with-start, so the first request starts
it) and give the permit back with ``release`` when they reach Succeeded, Failed or Aborted.
A permit is handed out by a signal from this workflow to the rollout's (``SlotGranted``);
histories recorded before the ``rollout-slots-grant-by-signal`` patch did it through an
activity, which stays registered so that they replay.

A holder that vanished (its workflow terminated, or ended without releasing) must not keep
a permit forever: while anyone holds or waits, the semaphore asks an activity every
``check_every_s`` which of them are closed and drops those; a grant that cannot be delivered
(the workflow is closed) drops the holder at once. The semaphore never ends on its own and
continues-as-new when Temporal suggests it, so its history stays bounded.

Deterministic: no I/O here; the two activities are named, never imported.
"""

from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

from models.operator import EVENT_SIGNAL
from models.rollout_slots import (
    ACQUIRE_SIGNAL,
    CLOSED_ACTIVITY,
    GRANT_ACTIVITY,
    RELEASE_SIGNAL,
    SLOTS_QUERY,
    SLOTS_WORKFLOW,
    SlotGrant,
    SlotHolder,
    SlotRelease,
    SlotRequest,
    SlotsInput,
    SlotsStatus,
    granted_envelope,
)
from workflows.engine.versioning import auto_upgrade

#: Patch: grants go to the rollout by a workflow-to-workflow signal, not through an activity.
GRANT_BY_SIGNAL_PATCH = "rollout-slots-grant-by-signal"

_ACTIVITY_TIMEOUT = timedelta(seconds=30)


# Auto-upgrade: the semaphore lives forever and must not hold an old version alive.
@workflow.defn(name=SLOTS_WORKFLOW, versioning_behavior=auto_upgrade())
class RolloutSlotsWorkflow:
    """A FIFO counting semaphore; ID ``rollout-slots/<scope>``."""

    @workflow.init
    def __init__(self, input: SlotsInput) -> None:
        self._scope = input.scope
        self._limit = input.limit
        self._check_every = timedelta(seconds=input.check_every_s)
        self._holders: list[SlotHolder] = list(input.holders)
        self._waiters: list[SlotHolder] = list(input.waiters)
        self._inbox: deque[SlotRequest | SlotRelease] = deque()
        self._regrant: list[SlotHolder] = []
        self._checked_at = workflow.now()

    @workflow.signal(name=ACQUIRE_SIGNAL)
    def acquire(self, request: SlotRequest) -> None:
        """Queue a request for a permit (handled in arrival order)."""
        self._inbox.append(request)

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, release: SlotRelease) -> None:
        """Queue a release: the permit goes back, or the waiter leaves the queue."""
        self._inbox.append(release)

    @workflow.query(name=SLOTS_QUERY)
    def slots(self) -> SlotsStatus:
        """Who holds a permit and who waits, in order."""
        return SlotsStatus(
            scope=self._scope,
            limit=self._limit,
            holders=[h.workflow_id for h in self._holders],
            waiters=[w.workflow_id for w in self._waiters],
        )

    @workflow.run
    async def run(self, input: SlotsInput) -> None:
        """Hand out permits until continued-as-new; never ends on its own."""
        del input  # read by __init__
        while True:
            await self._wait()
            while self._inbox:
                self._apply(self._inbox.popleft())
            await self._grant()
            if workflow.info().is_continue_as_new_suggested() and not self._inbox:
                workflow.continue_as_new(self._snapshot())

    async def _wait(self) -> None:
        """Wait for a signal; when anyone holds or waits, check for vanished holders."""
        timeout: float | None = None
        if self._holders or self._waiters:
            due = self._checked_at + self._check_every
            timeout = (due - workflow.now()).total_seconds()
            if timeout <= 0:
                await self._drop_closed()
                return
        try:
            await workflow.wait_condition(
                lambda: bool(self._inbox), timeout=timeout, timeout_summary="check holders"
            )
        except TimeoutError:
            await self._drop_closed()

    def _apply(self, item: SlotRequest | SlotRelease) -> None:
        if isinstance(item, SlotRelease):
            self._forget({item.holder})
            return
        self._limit = item.limit
        entry = SlotHolder(workflow_id=item.holder, request_id=item.request_id)
        for group in (self._holders, self._waiters):
            for index, known in enumerate(group):
                if known.workflow_id == item.holder:
                    group[index] = entry.model_copy(update={"since": known.since})
                    if group is self._holders:
                        self._regrant.append(group[index])
                    return
        self._waiters.append(entry.model_copy(update={"since": workflow.now()}))

    async def _grant(self) -> None:
        """Answer holders that asked again, then admit waiters in order up to the limit."""
        regrant, self._regrant = self._regrant, []
        for holder in regrant:
            if holder in self._holders and not await self._deliver(holder):
                self._holders.remove(holder)
        while self._waiters and len(self._holders) < self._limit:
            holder = self._waiters.pop(0)
            self._holders.append(holder)
            if not await self._deliver(holder):
                self._holders.remove(holder)

    async def _deliver(self, holder: SlotHolder) -> bool:
        """Signal ``SlotGranted`` to the holder; False when its workflow is closed."""
        grant = SlotGrant(
            scope=self._scope, holder=holder.workflow_id, request_id=holder.request_id
        )
        if workflow.patched(GRANT_BY_SIGNAL_PATCH):
            rollout = workflow.get_external_workflow_handle(holder.workflow_id)
            try:
                await rollout.signal(EVENT_SIGNAL, granted_envelope(grant, workflow.now()))
            except FailureError as error:  # the rollout's workflow is closed or gone
                workflow.logger.info("grant to %s not delivered: %s", holder.workflow_id, error)
                return False
            return True
        delivered: bool = await workflow.execute_activity(
            GRANT_ACTIVITY,
            grant,
            result_type=bool,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=0),
            summary=f"grant {self._scope} to {holder.workflow_id}",
        )
        return delivered

    async def _drop_closed(self) -> None:
        """Drop holders and waiters whose workflows are closed (terminated, timed out, ...)."""
        self._checked_at = workflow.now()
        ids = [h.workflow_id for h in (*self._holders, *self._waiters)]
        try:
            closed: list[str] = await workflow.execute_activity(
                CLOSED_ACTIVITY,
                ids,
                result_type=list[str],
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="check holders",
            )
        except ActivityError as error:
            workflow.logger.warning("could not check holders of %s: %s", self._scope, error)
            return
        if closed:
            workflow.logger.info("dropping closed holders of %s: %s", self._scope, closed)
            self._forget(set(closed))

    def _forget(self, workflow_ids: set[str]) -> None:
        """Take these workflows out of the holders and the queue alike."""
        self._holders = [h for h in self._holders if h.workflow_id not in workflow_ids]
        self._waiters = [w for w in self._waiters if w.workflow_id not in workflow_ids]

    def _snapshot(self) -> SlotsInput:
        return SlotsInput(
            scope=self._scope,
            limit=self._limit,
            check_every_s=self._check_every.total_seconds(),
            holders=self._holders,
            waiters=self._waiters,
        )
