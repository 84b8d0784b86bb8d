"""The engine on the real Temporal dev server, through a small test operator.

Timers that must jump a simulated day run on the time-skipping server instead
(``test_engine_timers.py``); the pause test here waits six real seconds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from models.operator import EngineSettings, OperatorStatus
from tests.engine.helpers import command, send, start, status, wait_for
from tests.engine.ticket_operator import CALLS, TicketWorkflow
from tests.replay import replay_failure
from tests.waiting import eventually


@pytest.fixture(scope="module")
def engine_env(dev_server_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return dev_server_env


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


async def test_pause_freezes_the_timer_and_resume_restarts_what_was_left(worker):
    review = 6.0
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 1, "review_hours": review / 3600},
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "pause", by="dave")
    paused = await status(handle)
    assert paused.paused and paused.timer_due is None
    assert paused.accepted_commands == ["abort", "approve", "resume"]

    await asyncio.sleep(review + 1)
    assert (await status(handle)).state == "InReview"

    await command(handle, "resume", by="dave")
    result: OperatorStatus = await handle.result()
    assert result.state == "Expired"
    assert [(c.command, c.by) for c in result.commands] == [("pause", "dave"), ("resume", "dave")]
    in_review = next(t for t in result.transitions if t.target == "InReview").at
    assert result.transitions[-1].at - in_review > timedelta(seconds=review + 1)


async def test_a_forced_continue_as_new_keeps_state_data_and_seen_event_ids(worker):
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 10},
        engine=EngineSettings(continue_as_new_after=2),
    )
    for index in range(5):
        await send(handle, "Vote", f"v{index}", voter=f"voter{index}")
    current = await _until_votes(handle, 5)
    await send(handle, "Vote", "v0", voter="voter0")
    await send(handle, "Vote", "v5", voter="voter5")
    current = await _until_votes(handle, 6)
    assert current.data["votes"] == 6
    assert current.state == "Open"
    assert [t.event for t in current.transitions] == ["Vote"] * 6  # the repeat of v0 is not one
    description = await handle.describe()
    assert description.run_id != handle.first_execution_run_id

    await command(handle, "abort", by="frank")
    result: OperatorStatus = await handle.result()
    assert result.state == "Cancelled"


async def test_a_run_hands_over_to_a_new_one_before_its_history_passes_the_bound(worker):
    limit = 64
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 1000},
        engine=EngineSettings(history_event_limit=limit),
    )
    for index in range(60):  # one at a time, as a watcher's samples come
        await send(handle, "Vote", f"v{index}", voter=f"voter{index}")
        current = await _until_votes(handle, index + 1)
    assert (current.state, current.data["votes"]) == ("Open", 60)  # nothing lost on the way

    histories = [
        await worker.client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        async for run in worker.client.list_workflows(f"WorkflowId = '{handle.id}'")
    ]
    lengths = [len(history.events) for history in histories]
    assert len(lengths) > 2, lengths  # it did hand over, more than once
    assert max(lengths) <= limit + 16, lengths  # one turn of the loop past the bound at most
    for history in histories:  # and each run that handed over replays as it ran
        assert await replay_failure(TicketWorkflow, handle.id, history.to_json()) is None
    await command(handle, "abort", by="frank")


async def test_a_state_timer_replays_though_the_replay_reads_a_later_clock_than_the_worker(worker):
    """Found by the long chaos run: a worker that takes a workflow task after another's
    attempt timed out can read the clock of the attempt that timed out, and every replay
    reads the later one. Where the worker saw the state's timer not yet due and started
    it, the replay saw it due; it fired at once, and the history no longer replayed
    (``UpsertWorkflowSearchAttributesMachine does not handle TimerStarted``).

    Here the history of a real run is given that later clock: the workflow task that set
    the InReview timer again (after a vote InReview ignores) is read two minutes late,
    past the timer's due time. It replays, because a due timer is a timer too.
    """
    handle = await start(
        worker.client,
        "ticket",
        worker.task_queue,
        spec={"required_votes": 1, "review_hours": 60 / 3600},
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await send(handle, "Vote", "v2", voter="bob")  # ignored in InReview; its timer is set again

    def timers(history: WorkflowHistory) -> list:
        return [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]

    history = await eventually(
        handle.fetch_history, lambda h: len(timers(h)) >= 2, what="the timer set again"
    )
    await handle.terminate("test over")
    events = list(history.events)
    by_id = {event.event_id: event for event in events}
    completed = by_id[
        timers(history)[-1].timer_started_event_attributes.workflow_task_completed_event_id
    ]
    started = by_id[completed.workflow_task_completed_event_attributes.started_event_id]
    started.event_time.seconds += 120  # past the review's 60 s

    failure = await replay_failure(
        TicketWorkflow, handle.id, WorkflowHistory(handle.id, events).to_json()
    )
    assert failure is None, failure


async def _until_votes(handle, votes: int) -> OperatorStatus:
    current = await status(handle)
    for _ in range(200):
        current = await status(handle)
        if current.data["votes"] >= votes:
            return current
        await asyncio.sleep(0.05)
    return current
