"""A test stand-in for the canary state machine, registered under the workflow type "canary".

Why a stand-in: counting Prometheus queries with 50 (or, in the benchmark, 500) rollouts in a
sampling state needs that many *running* canary workflows whose ``AutopilotState`` says
``Progressing``; driving that many real rollouts through the data-plane simulator would
measure the simulator, not the watcher. The stand-in runs on the real Temporal server, is
started by the real watcher (signal-with-start), upserts the engine's search attributes
and records every event it is signalled. It is named as what it is, everywhere it is used.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput

RECORDED_QUERY = "recorded"
#: The state the stand-in reports (one where the canary machine acts on samples).
STANDIN_STATE = "Progressing"
#: Events kept, newest last (a long benchmark would otherwise grow without bound).
KEEP = 500


@workflow.defn(name="canary")
class StandInCanary:
    """Sits in ``Progressing`` and records events until signalled ``Stop``."""

    def __init__(self) -> None:
        self._events: list[EventEnvelope] = []
        self._input: OperatorInput | None = None

    @workflow.run
    async def run(self, operator_input: OperatorInput) -> None:
        self._input = operator_input
        target = operator_input.target
        workflow.upsert_search_attributes(
            [
                SearchAttributeKey.for_keyword("AutopilotOperator").value_set("canary"),
                SearchAttributeKey.for_keyword("AutopilotTarget").value_set(
                    f"{target.namespace}/{target.name}"
                ),
                SearchAttributeKey.for_keyword("AutopilotState").value_set(STANDIN_STATE),
                SearchAttributeKey.for_int("CanaryWeight").value_set(10),
            ]
        )
        await workflow.wait_condition(lambda: any(e.type == "Stop" for e in self._events))

    @workflow.signal(name=EVENT_SIGNAL)
    def event(self, envelope: EventEnvelope) -> None:
        self._events.append(envelope)
        del self._events[:-KEEP]

    @workflow.query(name=RECORDED_QUERY)
    def recorded(self) -> list[EventEnvelope]:
        return list(self._events)


def standin_worker(client: Client, task_queue: str) -> Worker:
    """A worker for the stand-in (unsandboxed: it is test-only and pure)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[StandInCanary],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_workflow_tasks=50,
    )


async def _serve(address: str, task_queue: str) -> None:
    from service.temporal import connect

    client = await connect(address)
    async with standin_worker(client, task_queue):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    # ``python -m tests.watchers.standin ADDRESS TASK_QUEUE``: the stand-in in its own process,
    # so a benchmark measures the watcher's CPU without the workflows'.
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
