"""Test-only workflows that record what watchers deliver, under real operator names.

Why: delivery tests must show that an event reached a real workflow on a real Temporal
server, without depending on the operators' engine. Each recorder is registered under an
operator name ("quarantine", "autoroute", "canary"), keeps its input and every event it is
signalled (duplicates included, unlike the engine), and answers the ``recorded`` query.
An event of type ``Stop`` ends it.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput

RECORDED_QUERY = "recorded"
STOP_EVENT = "Stop"


class Recording(BaseModel):
    """What a recorder saw."""

    input: OperatorInput | None = None
    events: list[EventEnvelope] = Field(default_factory=list)

    @property
    def event_ids(self) -> list[str]:
        return [event.id for event in self.events]


class _Recorder:
    def __init__(self) -> None:
        self._recording = Recording()

    async def _record(self, operator_input: OperatorInput) -> None:
        self._recording.input = operator_input
        await workflow.wait_condition(
            lambda: any(event.type == STOP_EVENT for event in self._recording.events)
        )

    @workflow.signal(name=EVENT_SIGNAL)
    def event(self, envelope: EventEnvelope) -> None:
        self._recording.events.append(envelope)

    @workflow.query(name=RECORDED_QUERY)
    def recorded(self) -> Recording:
        return self._recording


@workflow.defn(name="quarantine")
class RecordingQuarantine(_Recorder):
    @workflow.run
    async def run(self, operator_input: OperatorInput) -> None:
        await self._record(operator_input)


@workflow.defn(name="autoroute")
class RecordingAutoroute(_Recorder):
    @workflow.run
    async def run(self, operator_input: OperatorInput) -> None:
        await self._record(operator_input)


@workflow.defn(name="canary")
class RecordingCanary(_Recorder):
    @workflow.run
    async def run(self, operator_input: OperatorInput) -> None:
        await self._record(operator_input)


RECORDERS = [RecordingQuarantine, RecordingAutoroute, RecordingCanary]


def recording_worker(client: Client, task_queue: str) -> Worker:
    """A worker running every recorder (unsandboxed: they are test-only and pure)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=RECORDERS,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def recorded(client: Client, workflow_id: str, *, events: int = 1) -> Recording:
    """Query a recorder until it holds at least ``events`` events (or give up after ~60 s).

    A signal accepted by the server reaches the workflow when the worker next runs it,
    so the first queries may see fewer events; the wait is a bound, not an assertion.
    """
    recording = Recording()
    for _ in range(600):
        try:
            recording = await client.get_workflow_handle(workflow_id).query(
                RECORDED_QUERY, result_type=Recording
            )
        except Exception:  # not started yet, or the first task still running
            recording = Recording()
        if len(recording.events) >= events:
            return recording
        await asyncio.sleep(0.1)
    return recording


async def exists(client: Client, workflow_id: str) -> bool:
    """Whether Temporal has any run of ``workflow_id``."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


def unique_name(prefix: str = "t") -> str:
    """A fresh Kubernetes-valid name, so tests never share a workflow ID."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
