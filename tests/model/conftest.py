"""Fixtures of the model test: a worker whose every activity waits for the test's answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.model.script import Script
from tests.model.world import World, model_worker


@pytest.fixture(scope="module")
async def world(dev_server_env: WorkflowEnvironment) -> AsyncIterator[World]:
    """The canary, quarantine and drill workflows on the dev server, with scripted workers."""
    script = Script()
    # Every failure the model injects would be logged with its traceback.
    activity_log = logging.getLogger("temporalio.activity")
    level = activity_log.level
    activity_log.setLevel(logging.ERROR)
    try:
        async with model_worker(dev_server_env.client, script) as worker:
            yield World(
                asyncio.get_running_loop(), dev_server_env.client, worker.task_queue, script
            )
    finally:
        activity_log.setLevel(level)
