"""Every activity heartbeats while it runs, so its heartbeat timeout can be short.

An activity that takes longer than its heartbeat timeout, and never heartbeats itself,
completes on a worker built by ``make_worker`` (the interceptor beats for it), and times
out on a bare worker: the server is told the worker lives by the interceptor alone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import TimeoutError, TimeoutType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker_main import make_worker, workflow_runner

pytestmark = pytest.mark.temporal


@activity.defn(name="test.slow_and_silent")
async def slow_and_silent(seconds: float) -> str:
    """Longer than its heartbeat timeout, and never heartbeats itself."""
    await asyncio.sleep(seconds)
    return "done"


@workflow.defn(name="test.slow_step")
class SlowStep:
    @workflow.run
    async def run(self, seconds: float) -> str:
        result: str = await workflow.execute_activity(
            "test.slow_and_silent",
            seconds,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result


async def run_slow_step(env: WorkflowEnvironment, worker: Worker, queue: str) -> str:
    async with worker:
        result: str = await env.client.execute_workflow(
            SlowStep.run, 3.0, id=f"slow-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        return result


async def test_an_activity_longer_than_its_heartbeat_timeout_completes_on_our_worker(
    dev_server_env: WorkflowEnvironment,
) -> None:
    queue = f"beats-{uuid.uuid4().hex[:8]}"
    worker = make_worker(dev_server_env.client, queue, [SlowStep], [slow_and_silent])

    assert await run_slow_step(dev_server_env, worker, queue) == "done"


async def test_without_the_interceptor_the_same_activity_times_out(
    dev_server_env: WorkflowEnvironment,
) -> None:
    queue = f"silent-{uuid.uuid4().hex[:8]}"
    bare = Worker(
        dev_server_env.client,
        task_queue=queue,
        workflows=[SlowStep],
        activities=[slow_and_silent],
        workflow_runner=workflow_runner(),
    )

    with pytest.raises(WorkflowFailureError) as failed:
        await run_slow_step(dev_server_env, bare, queue)
    timeout = failed.value.cause.__cause__ if failed.value.cause else None
    assert isinstance(timeout, TimeoutError) and timeout.type == TimeoutType.HEARTBEAT
