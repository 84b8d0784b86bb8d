"""Engine behaviour that needs the real Temporal dev server: pause and continue-as-new."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.operator import EngineSettings, OperatorStatus
from tests.engine.helpers import command, send, start, status, wait_for


@pytest.fixture(scope="module")
def engine_env(dev_server_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return dev_server_env


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


async def _until_votes(handle, votes: int) -> OperatorStatus:
    current = await status(handle)
    for _ in range(200):
        current = await status(handle)
        if current.data["votes"] >= votes:
            return current
        await asyncio.sleep(0.05)
    return current
