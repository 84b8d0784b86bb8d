"""Shared fixtures: real Temporal servers, started only on demand.

The dev server is shared by the whole session; a time-skipping server belongs to one test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.temporal_env import start_dev_server, start_time_skipping


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own (it starts in about 0.1 s).

    The test server's clock is global and one stray lock freezes it for good: after a
    workflow is terminated while one of its activities runs, or an update is refused in a
    workflow's first task, it never skips time again. Shared across tests, one test's
    leftovers could hang another test's timer for ever (a CI run once hung that way), so
    each test whose timers must jump gets a server no other test has touched.
    """
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


pytest_plugins = ["tests.fixtures.cluster", "tests.fixtures.faults", "tests.fixtures.flux"]
