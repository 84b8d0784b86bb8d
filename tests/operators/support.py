"""What every operator's tests need: start an instance, send it events and commands, wait.

Shared by the engine's tests and by the tests ``autopilot new operator`` generates, so a new
operator's tests read like the project's own and nobody writes a poll loop again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

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
from tests.waiting import eventually

#: Every workflow started by :func:`start`, so fixtures can clean up after a test.
STARTED: list[WorkflowHandle[Any, Any]] = []


async def start(
    client: Client,
    operator: str,
    task_queue: str,
    spec: dict[str, Any] | None = None,
    engine: EngineSettings | None = None,
) -> WorkflowHandle[Any, OperatorStatus]:
    """Start one instance of ``operator`` on a target of its own (``tests/t-<random>``)."""
    target = Target(namespace="tests", name=f"t-{uuid.uuid4().hex[:8]}")
    handle: WorkflowHandle[Any, OperatorStatus] = await client.start_workflow(
        operator,
        OperatorInput(target=target, spec=spec or {}, engine=engine or EngineSettings()),
        id=target.workflow_id(operator),
        task_queue=task_queue,
        result_type=OperatorStatus,
    )
    STARTED.append(handle)
    return handle


async def send(handle: WorkflowHandle[Any, Any], type_: str, event_id: str, **payload: Any) -> None:
    """Signal one event, as a watcher would."""
    await handle.signal(
        EVENT_SIGNAL, EventEnvelope(id=event_id, type=type_, payload=payload, source="test")
    )


async def command(
    handle: WorkflowHandle[Any, Any], name: str, by: str = "alice", reason: str | None = None
) -> CommandReceipt:
    """Give a human command and wait for its receipt, as ``autopilot <command>`` does."""
    return await handle.execute_update(
        COMMAND_UPDATE,
        CommandRequest(command=name, by=by, reason=reason),
        result_type=CommandReceipt,
    )


async def status(handle: WorkflowHandle[Any, Any]) -> OperatorStatus:
    """The machine's status query."""
    return await handle.query(STATUS_QUERY, result_type=OperatorStatus)


async def wait_for(
    handle: WorkflowHandle[Any, Any], state: str, attempts: int = 200
) -> OperatorStatus:
    """Ask the status query until the machine is in ``state`` (fails after ~10 s)."""
    found: OperatorStatus = await eventually(
        lambda: status(handle),
        lambda current: current.state == state,
        attempts=attempts,
        pause=0.05,
        what=f"{handle.id} in state {state}",
    )
    return found


async def stop(handle: WorkflowHandle[Any, Any]) -> None:
    """Terminate a workflow a test left running, once none of its workers is running.

    (A worker cut off mid-call would be recorded as a call that never finished, and a
    time-skipping server whose workflow is terminated mid-activity never skips time again.)
    """
    for _ in range(200):
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        if not description.raw_description.pending_activities:
            await handle.terminate("test over")
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} kept an activity running")
