"""Engine timers that must jump a simulated day, on a time-skipping server per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.operator import OperatorStatus
from tests.engine.helpers import send, start, ticket_worker


@pytest.fixture
async def worker(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    """A ticket worker on the test's own time-skipping server."""
    async with ticket_worker(time_skipping_env) as running:
        yield running


async def test_the_review_timer_expires_the_ticket_after_a_simulated_day(worker):
    handle = await start(worker.client, "ticket", worker.task_queue, spec={"required_votes": 1})
    await send(handle, "Vote", "v1", voter="ann")
    result: OperatorStatus = await handle.result()
    assert result.state == "Expired"
    in_review = next(t for t in result.transitions if t.target == "InReview").at
    expired = result.transitions[-1].at
    assert timedelta(hours=24) <= expired - in_review < timedelta(hours=25)
