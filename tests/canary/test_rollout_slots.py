"""The rollout-slots semaphore on the real Temporal dev server: permits are handed out in
order up to the cap, given back on release, and never kept by a workflow that is gone.

Holders are small real workflows (``slot_holder.py``) that record the ``SlotGranted`` events
the semaphore's grant activity signals to them, as a canary would receive them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.canary.slots import closed_holders, grant
from models.rollout_slots import (
    ACQUIRE_SIGNAL,
    RELEASE_SIGNAL,
    SLOTS_QUERY,
    SLOTS_WORKFLOW,
    SlotRelease,
    SlotRequest,
    SlotsInput,
    SlotsStatus,
)
from tests.canary.slot_holder import FINISH_SIGNAL, GRANTS_QUERY, SlotHolderWorkflow
from tests.waiting import eventually
from worker_main import make_worker
from workflows.rollout_slots import RolloutSlotsWorkflow

pytestmark = [pytest.mark.temporal]


@dataclass
class Slots:
    """One semaphore (cap 1, holders checked every second) and helpers to drive it."""

    client: Client
    task_queue: str
    scope: str

    @property
    def semaphore(self) -> WorkflowHandle:
        return self.client.get_workflow_handle(f"{SLOTS_WORKFLOW}/{self.scope}")

    async def holder(self, name: str) -> WorkflowHandle:
        return await self.client.start_workflow(
            SlotHolderWorkflow.run, id=f"{self.scope}-{name}", task_queue=self.task_queue
        )

    async def acquire(self, holder: WorkflowHandle, request_id: str, limit: int = 1) -> None:
        """Ask as the canary's request activity does: signal-with-start."""
        await self.client.start_workflow(
            SLOTS_WORKFLOW,
            SlotsInput(scope=self.scope, limit=limit, check_every_s=1),
            id=self.semaphore.id,
            task_queue=self.task_queue,
            start_signal=ACQUIRE_SIGNAL,
            start_signal_args=[SlotRequest(holder=holder.id, request_id=request_id, limit=limit)],
        )

    async def release(self, holder: WorkflowHandle) -> None:
        await self.semaphore.signal(RELEASE_SIGNAL, SlotRelease(holder=holder.id))

    async def status(self) -> SlotsStatus:
        return await self.semaphore.query(SLOTS_QUERY, result_type=SlotsStatus)

    async def settles_on(self, holders: list[str], waiters: list[str]) -> SlotsStatus:
        """Poll until the semaphore holds exactly ``holders`` and ``waiters`` (functional wait)."""
        settled: SlotsStatus = await eventually(
            self.status,
            lambda current: current.holders == holders and current.waiters == waiters,
            attempts=300,
            pause=0.1,
            what=f"holders {holders} and waiters {waiters}",
        )
        return settled

    @staticmethod
    async def grants(holder: WorkflowHandle) -> list[str]:
        return await holder.query(GRANTS_QUERY, result_type=list[str])

    async def granted(self, holder: WorkflowHandle, *request_ids: str) -> None:
        """Poll until ``holder`` received exactly these grants (delivery is an activity)."""
        expected = [f"slot-granted:{self.scope}:{r}" for r in request_ids]
        await eventually(
            lambda: self.grants(holder),
            lambda current: current == expected,
            attempts=300,
            pause=0.1,
            what=f"{holder.id} granted {expected}",
        )


@pytest.fixture(scope="module")
async def slots_worker(dev_server_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, str]]:
    task_queue = f"slots-{uuid.uuid4().hex[:6]}"
    async with make_worker(
        dev_server_env.client,
        task_queue,
        [RolloutSlotsWorkflow, SlotHolderWorkflow],
        [grant, closed_holders],
    ):
        yield dev_server_env.client, task_queue


@pytest.fixture
async def slots(slots_worker: tuple[Client, str]) -> AsyncIterator[Slots]:
    client, task_queue = slots_worker
    yield Slots(client, task_queue, f"test-{uuid.uuid4().hex[:8]}")


async def test_with_a_cap_of_one_the_second_rollout_waits_until_the_first_releases(slots):
    first, second = await slots.holder("first"), await slots.holder("second")
    await slots.acquire(first, "r1")
    await slots.acquire(second, "r2")

    await slots.settles_on(holders=[first.id], waiters=[second.id])
    await slots.granted(first, "r1")
    assert await slots.grants(second) == []

    await slots.release(first)
    await slots.settles_on(holders=[second.id], waiters=[])
    await slots.granted(second, "r2")


async def test_waiters_are_admitted_in_the_order_they_asked(slots):
    holders = [await slots.holder(name) for name in ("a", "b", "c", "d")]
    for index, holder in enumerate(holders):
        await slots.acquire(holder, f"r{index}")
    await slots.settles_on(holders=[holders[0].id], waiters=[h.id for h in holders[1:]])

    admitted = []
    for holder in holders:
        current = await slots.status()
        admitted.append(current.holders[0])
        await slots.release(holder)
        await slots.settles_on(
            holders=[h.id for h in holders[len(admitted) : len(admitted) + 1]],
            waiters=[h.id for h in holders[len(admitted) + 1 :]],
        )
    assert admitted == [h.id for h in holders]


async def test_a_rollout_aborted_while_queued_leaves_the_queue_and_is_never_granted(slots):
    first, aborted, third = [await slots.holder(n) for n in ("first", "aborted", "third")]
    for index, holder in enumerate((first, aborted, third)):
        await slots.acquire(holder, f"r{index}")
    await slots.settles_on(holders=[first.id], waiters=[aborted.id, third.id])

    await slots.release(aborted)  # what the canary's Aborted state does
    await slots.settles_on(holders=[first.id], waiters=[third.id])
    await slots.release(first)
    await slots.settles_on(holders=[third.id], waiters=[])
    assert await slots.grants(aborted) == []


async def test_asking_again_while_holding_is_answered_again_without_taking_a_second_permit(
    slots,
):
    holder, other = await slots.holder("holder"), await slots.holder("other")
    await slots.acquire(holder, "r1", limit=2)
    await slots.granted(holder, "r1")
    await slots.acquire(holder, "r2", limit=2)  # e.g. the canary re-entered Queued
    await slots.acquire(other, "r3", limit=2)

    await slots.settles_on(holders=[holder.id, other.id], waiters=[])
    await slots.granted(holder, "r1", "r2")
    await slots.granted(other, "r3")


async def test_a_holder_whose_workflow_was_terminated_loses_its_permit_to_the_next(slots):
    gone, next_ = await slots.holder("gone"), await slots.holder("next")
    await slots.acquire(gone, "r1")
    await slots.acquire(next_, "r2")
    await slots.settles_on(holders=[gone.id], waiters=[next_.id])

    await gone.terminate("the rollout's workflow was terminated by hand")
    await slots.settles_on(holders=[next_.id], waiters=[])
    await slots.granted(next_, "r2")


async def test_a_holder_that_finished_without_releasing_loses_its_permit_too(slots):
    done, next_ = await slots.holder("done"), await slots.holder("next")
    await slots.acquire(done, "r1")
    await slots.acquire(next_, "r2")
    await slots.settles_on(holders=[done.id], waiters=[next_.id])

    await done.signal(FINISH_SIGNAL)
    await done.result()
    await slots.settles_on(holders=[next_.id], waiters=[])
