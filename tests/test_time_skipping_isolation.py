"""Why every test whose timers must jump gets a time-skipping server of its own.

The test server's clock is global, and a workflow terminated while one of its activities
runs freezes it for good. A CI run once hung on exactly that: one test's clean-up froze
the shared server and a later test's one-day timer never fired. These tests pin the quirk
down, so the day it is fixed upstream shows here, and show a test's own server unaffected.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.temporal_env import start_time_skipping


@activity.defn
async def take_a_second() -> None:
    await asyncio.sleep(1)


@workflow.defn(sandboxed=False)
class CallsAnActivity:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(take_a_second, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(sandboxed=False)
class WaitsADay:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(days=1))
        return "a day passed"


def worker_for(client: Client) -> Worker:
    return Worker(
        client,
        task_queue="isolation",
        workflows=[CallsAnActivity, WaitsADay],
        activities=[take_a_second],
    )


async def a_day_passes(client: Client, within_seconds: float) -> bool:
    handle = await client.start_workflow(
        WaitsADay.run, id=f"day-{uuid.uuid4().hex[:8]}", task_queue="isolation"
    )
    try:
        await asyncio.wait_for(handle.result(), within_seconds)
        return True
    except TimeoutError:
        await handle.terminate("the clock is frozen")
        return False


async def test_terminating_a_workflow_mid_activity_freezes_a_shared_time_skipping_server():
    shared = await start_time_skipping()
    try:
        async with worker_for(shared.client):
            busy = await shared.client.start_workflow(
                CallsAnActivity.run, id=f"busy-{uuid.uuid4().hex[:8]}", task_queue="isolation"
            )
            await asyncio.sleep(0.3)  # the activity is running
            await busy.terminate("clean-up of an earlier test")
            await asyncio.sleep(1.5)  # and has finished, too late

            assert not await a_day_passes(shared.client, within_seconds=3)
    finally:
        await shared.shutdown()


async def test_a_tests_own_time_skipping_server_jumps_a_day_at_once(
    time_skipping_env: WorkflowEnvironment,
):
    async with worker_for(time_skipping_env.client):
        assert await a_day_passes(time_skipping_env.client, within_seconds=30)
