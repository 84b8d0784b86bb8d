"""Fixtures of the CLI tests: a real Temporal dev server, a worker for the engine's test
operator ("ticket"), and a way to run ``autopilot`` in-process as a user would.

The CLI runs in a thread (``asyncio.to_thread``) so that the worker, on the test session's
event loop, keeps polling while a command waits for an answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from cli.main import app
from models.operator import EngineSettings, OperatorInput, OperatorStatus, Target
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from worker_main import make_worker

Invoke = Callable[..., Awaitable[Result]]


@pytest.fixture(scope="session")
async def ticket_worker(dev_server_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    """A worker for the ticket operator, on the dev server, for the whole session."""
    task_queue = f"cli-tests-{uuid.uuid4().hex[:6]}"
    async with make_worker(
        dev_server_env.client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES
    ) as worker:
        yield worker


@pytest.fixture
async def tickets(ticket_worker: Worker) -> AsyncIterator[Tickets]:
    """Starts tickets for one test; terminates the ones still running afterwards."""
    made = Tickets(ticket_worker.client, ticket_worker.task_queue)
    yield made
    for handle in made.started:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test over")


class Tickets:
    """Start ticket workflows in a namespace of their own (so list filters can be tested)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.namespace = f"cli-{uuid.uuid4().hex[:6]}"
        self.started: list[WorkflowHandle[Any, Any]] = []

    async def start(
        self,
        namespace: str | None = None,
        task_queue: str | None = None,
        engine: EngineSettings | None = None,
        **spec: Any,
    ) -> WorkflowHandle[Any, Any]:
        target = Target(namespace=namespace or self.namespace, name=f"t-{uuid.uuid4().hex[:6]}")
        handle = await self.client.start_workflow(
            "ticket",
            OperatorInput(target=target, spec=spec, engine=engine or EngineSettings()),
            id=target.workflow_id("ticket"),
            task_queue=task_queue or self.task_queue,
            result_type=OperatorStatus,
        )
        self.started.append(handle)
        return handle


@pytest.fixture
def isolated_state(tmp_path: Path) -> dict[str, str | None]:
    """Environment that hides any dev cluster or embedded server of the developer."""
    return {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "AUTOPILOT_DEV_STATE": str(tmp_path / "state" / "dev"),
        "AUTOPILOT_TEMPORAL_STATE_DIR": str(tmp_path / "state" / "autopilot"),
        "AUTOPILOT_TEMPORAL_ADDRESS": None,
        "TEMPORAL_ADDRESS": None,
        "AUTOPILOT_TEMPORAL_UI_URL": None,
        "AUTOPILOT_TEMPORAL_IDENTITY": "tester",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "COLUMNS": "200",
        "HOME": str(tmp_path / "home"),
    }


@pytest.fixture
def autopilot(isolated_state: dict[str, str | None]) -> Iterator[Invoke]:
    """``await autopilot("status", wid, env={...})``: the CLI, in-process, in a thread."""
    runner = CliRunner()

    async def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        merged = {**isolated_state, **(env or {})}
        return await asyncio.to_thread(
            runner.invoke, app, list(args), env=merged, catch_exceptions=False
        )

    yield invoke


@pytest.fixture
def temporal_env(dev_server_env: WorkflowEnvironment) -> dict[str, str | None]:
    """Points the CLI at the session's dev server (as `autopilot dev env` would)."""
    return {"TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host}
