"""Fixtures for engine tests: a ticket-operator worker per module, and cleanup per test.

Modules on the shared dev server define ``engine_env``; a module whose timers must jump
defines its own ``worker`` on a time-skipping server of the test's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.engine.helpers import STARTED, ticket_worker


@pytest.fixture(scope="module")
async def module_worker(engine_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    # One worker for the module: workflows a test leaves running keep a poller until the
    # test's clean-up terminates them.
    async with ticket_worker(engine_env) as running:
        yield running


@pytest.fixture
async def worker(module_worker: Worker) -> AsyncIterator[Worker]:
    """The module's worker; workflows a test leaves running are terminated after it."""
    STARTED.clear()
    yield module_worker
    for handle in STARTED:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test over")
