"""The engine on Temporal's time-skipping server, through a small test operator.

Pause and continue-as-new are tested on the dev server instead
(``test_engine_on_dev_server.py``): the time-skipping server loses updates after it has
skipped time, and drops signals that race a continue-as-new.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import (
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from models.operator import OperatorStatus
from tests.engine.helpers import command, send, start, status, wait_for
from tests.engine.ticket_operator import CALLS


@pytest.fixture(scope="module")
def engine_env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


async def test_enough_votes_move_the_ticket_into_review_and_the_entry_worker_ran(worker):
    handle = await start(worker.client, "ticket", worker.task_queue)
    await send(handle, "Vote", "v1", voter="ann")
    current = await status(handle)
    await send(handle, "Vote", "v2", voter="bob")
    current = await wait_for(handle, "InReview")
    assert current.data["votes"] == 2
    assert [t.target for t in current.transitions] == ["Open", "InReview"]
    assert ("announce", "Open", 0) in CALLS


async def test_a_repeated_event_id_is_ignored(worker):
    handle = await start(worker.client, "ticket", worker.task_queue, spec={"required_votes": 3})
    for _ in range(3):
        await send(handle, "Vote", "same-id", voter="ann")
    await send(handle, "Vote", "other-id", voter="bob")
    current = await status(handle)
    for _ in range(50):
        current = await status(handle)
        if current.data["votes"] >= 2:
            break
    assert current.data["votes"] == 2
    assert current.state == "Open"


async def test_a_command_the_state_does_not_accept_is_refused_with_the_state_named(worker):
    handle = await start(worker.client, "ticket", worker.task_queue)
    await wait_for(handle, "Open")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await command(handle, "approve")
    message = str(refused.value.cause)
    assert "'approve' is not accepted in state Open" in message
    assert "accepted here: abort, pause" in message
    history = await handle.fetch_history()
    assert not [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]


async def test_an_unknown_command_is_refused_as_unknown(worker):
    handle = await start(worker.client, "ticket", worker.task_queue)
    # (waiting for the first task first: the time-skipping server stops skipping time for
    # good after an update is refused in a workflow's very first task)
    await wait_for(handle, "Open")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await command(handle, "launch-missiles")
    assert "'launch-missiles' (unknown command) is not accepted" in str(refused.value.cause)


async def test_an_approved_ticket_is_applied_by_its_worker_and_finishes_with_who_approved(worker):
    handle = await start(worker.client, "ticket", worker.task_queue, spec={"required_votes": 1})
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    receipt = await command(handle, "approve", by="carol", reason="looks safe")
    assert (receipt.state, receipt.now, receipt.applied) == ("InReview", "Applying", True)
    result: OperatorStatus = await handle.result()
    assert result.state == "Done" and result.final
    assert result.data["applied_by_worker"] is True
    assert [(c.command, c.by, c.reason) for c in result.commands] == [
        ("approve", "carol", "looks safe")
    ]
    assert result.transitions[-1].event == "Applied"


async def test_the_review_timer_expires_the_ticket_after_a_simulated_day(worker):
    handle = await start(worker.client, "ticket", worker.task_queue, spec={"required_votes": 1})
    await send(handle, "Vote", "v1", voter="ann")
    result: OperatorStatus = await handle.result()
    assert result.state == "Expired"
    in_review = next(t for t in result.transitions if t.target == "InReview").at
    expired = result.transitions[-1].at
    assert timedelta(hours=24) <= expired - in_review < timedelta(hours=25)


async def test_a_failed_worker_settles_the_ticket_in_broken_until_retried(worker):
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 1, "fail_apply": True},
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "approve")
    broken = await wait_for(handle, "Broken")
    assert broken.settled and not broken.final
    assert broken.accepted_commands == ["abort", "pause", "retry"]
    await command(handle, "abort", by="erin", reason="giving up")
    result: OperatorStatus = await handle.result()
    assert result.state == "Cancelled"


async def test_an_invalid_spec_fails_the_workflow_with_the_field_named(worker):
    handle = await start(
        worker.client, "ticket", worker.task_queue, spec={"required_votes": "many"}
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "spec.required_votes" in str(failed.value.cause)
