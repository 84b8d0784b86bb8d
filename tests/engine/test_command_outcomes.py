"""Every accepted command gets an outcome, and a finished machine always completes its run.

The ticket's ``apply_change`` worker can be held (``hold_apply``), so these tests give a
command while a worker runs, then let the worker's result move the machine on first: the
situation in which an ``abort`` sent during a canary's ``Promoting`` used to leave the
workflow Running for ever, with nothing left to do.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from models.operator import (
    APPLIED,
    COMMAND_UPDATE,
    SUPERSEDED,
    CommandReceipt,
    CommandRequest,
    OperatorStatus,
)
from tests.engine.helpers import command, send, start, status, wait_for
from tests.engine.ticket_operator import release_apply
from tests.waiting import eventually


@pytest.fixture(scope="module")
def engine_env(dev_server_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return dev_server_env


async def _applying_and_held(worker):
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 1, "hold_apply": True},
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "approve")
    current = await wait_for(handle, "Applying")
    assert "worker ticket.apply_change" in current.waiting_for
    return handle


async def test_a_command_accepted_while_a_worker_runs_is_answered_when_the_machine_finishes(
    worker,
):
    handle = await _applying_and_held(worker)
    pause = await handle.start_update(
        COMMAND_UPDATE,
        CommandRequest(command="pause", by="dave", reason="hold on"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=CommandReceipt,
    )

    release_apply(handle.id)

    receipt = await asyncio.wait_for(pause.result(), timeout=30)
    assert (receipt.state, receipt.now, receipt.applied) == ("Applying", "Done", False)
    assert receipt.outcome == SUPERSEDED
    assert "reached Done, a final state, before it could act" in (receipt.detail or "")
    result: OperatorStatus = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.state == "Done" and result.waiting_for == []
    assert [(c.command, c.accepted_in, c.state, c.outcome) for c in result.commands] == [
        ("approve", "InReview", "InReview", APPLIED),
        ("pause", "Applying", "Done", SUPERSEDED),
    ]


async def test_a_run_that_finished_is_completed_not_left_running(worker):
    handle = await _applying_and_held(worker)
    await handle.start_update(
        COMMAND_UPDATE,
        CommandRequest(command="pause", by="dave"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=CommandReceipt,
    )
    release_apply(handle.id)

    async def completed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await eventually(completed, what="the finished ticket's run completes")


async def test_an_event_that_arrives_as_the_machine_finishes_is_handled_by_a_new_run(worker):
    handle = await _applying_and_held(worker)
    await send(handle, "Vote", "late-vote", voter="bob")

    release_apply(handle.id)

    async def in_a_new_run() -> OperatorStatus | None:
        latest = worker.client.get_workflow_handle(handle.id)
        description = await latest.describe()
        if description.run_id == handle.result_run_id:
            return None
        current = await status(latest)
        return current if current.state == "InReview" else None

    fresh = await eventually(in_a_new_run, what="the late vote opens a new ticket run")
    assert fresh.data["votes"] == 1
    assert [t.event_id for t in fresh.transitions] == ["late-vote"]
    first = worker.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW


async def test_a_running_machine_always_says_what_it_waits_for(worker):
    handle = await start(worker.client, "ticket", worker.task_queue, spec={"required_votes": 1})
    await wait_for(handle, "Open")
    while_announcing = await status(handle)
    assert set(while_announcing.waiting_for) <= {
        "worker ticket.announce",
        "a command or a new event (settled)",
    }
    settled = ["a command or a new event (settled)"]
    await eventually(lambda: status(handle), lambda s: s.waiting_for == settled, what="settled")
    await send(handle, "Vote", "v1", voter="ann")
    review = await wait_for(handle, "InReview")
    assert [w.split(",")[0] for w in review.waiting_for] == ["the InReview timer"]
    await command(handle, "pause", by="dave")
    paused = await status(handle)
    assert paused.waiting_for == ["resume (paused)"]
