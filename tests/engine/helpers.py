"""Helpers for engine tests: start an operator workflow, send events, wait for a state."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.operator import (
    COMMAND_UPDATE,
    EVENT_SIGNAL,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    EngineSettings,
    EventEnvelope,
    OperatorInput,
    OperatorStatus,
    Target,
)
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from worker_main import make_worker

#: Every workflow started by :func:`start`, so fixtures can clean up after a test.
STARTED: list[WorkflowHandle[Any, Any]] = []


async def start(
    client: Client,
    operator: str,
    task_queue: str,
    spec: dict[str, Any] | None = None,
    engine: EngineSettings | None = None,
) -> WorkflowHandle[Any, Any]:
    target = Target(namespace="tests", name=f"t-{uuid.uuid4().hex[:8]}")
    handle = await client.start_workflow(
        operator,
        OperatorInput(target=target, spec=spec or {}, engine=engine or EngineSettings()),
        id=target.workflow_id(operator),
        task_queue=task_queue,
        result_type=OperatorStatus,
    )
    STARTED.append(handle)
    return handle


async def send(handle: WorkflowHandle[Any, Any], type_: str, event_id: str, **payload: Any) -> None:
    await handle.signal(
        EVENT_SIGNAL, EventEnvelope(id=event_id, type=type_, payload=payload, source="test")
    )


async def command(
    handle: WorkflowHandle[Any, Any], name: str, by: str = "alice", reason: str | None = None
) -> CommandReceipt:
    return await handle.execute_update(
        COMMAND_UPDATE,
        CommandRequest(command=name, by=by, reason=reason),
        result_type=CommandReceipt,
    )


async def status(handle: WorkflowHandle[Any, Any]) -> OperatorStatus:
    return await handle.query(STATUS_QUERY, result_type=OperatorStatus)


async def wait_for(
    handle: WorkflowHandle[Any, Any], state: str, attempts: int = 200
) -> OperatorStatus:
    """Poll the status query until the machine is in ``state`` (fails after ~10 s)."""
    current = None
    for _ in range(attempts):
        current = await status(handle)
        if current.state == state:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected state {state}, still {current.state if current else None}")


def ticket_worker(env: WorkflowEnvironment) -> Worker:
    """A worker for the ticket operator on ``env``, on a task queue of its own."""
    task_queue = f"engine-{uuid.uuid4().hex[:6]}"
    return make_worker(env.client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES)
