"""A looping operator for ``bench/worker_kills.py``: it always has a worker running.

``Working`` runs ``kill.step``, a worker that takes ``seconds`` and never heartbeats itself;
its result loops the machine back into ``Working``, so at any moment of a kill an activity
is in flight. Every attempt prints one JSON line (workflow, step, attempt, wall clock) so
the bench can tell when a killed attempt started again elsewhere.
"""

import asyncio
import json
import time

from pydantic import BaseModel
from temporalio import activity, workflow

from models.operator import OperatorInput, OperatorStatus, StepInput
from workflows.engine import ActivityRef, Command, Ctx, Event, Operator, OperatorWorkflow
from workflows.registry import register


class LoopSpec(BaseModel):
    seconds: float = 2.0


class LoopData(BaseModel):
    steps: int = 0


class Stepped(Event):
    pass


def count(ctx: Ctx[LoopSpec, LoopData, Stepped]) -> LoopData:
    return ctx.data.model_copy(update={"steps": ctx.data.steps + 1})


step = ActivityRef("kill.step", returns=Stepped, max_attempts=0, summary="one slow step")

loop = Operator(
    "killloop",
    spec=LoopSpec,
    data=LoopData,
    initial="Working",
    events=[],
    search_attributes={},
    description="Loops a slow worker forever (benchmark only).",
)
loop.state("Working", run=[step], doc="a worker is always running")
loop.state("Stopped", final=True, doc="aborted")
loop.on("Working", Stepped, go="Working", do=count)
loop.on("Working", Command("abort"), go="Stopped")
loop.check()


@register
@workflow.defn(name="killloop")
class KillLoopWorkflow(OperatorWorkflow):
    operator = loop

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        return await self.run_operator(input)


@activity.defn(name="kill.step")
async def step_impl(step_input: StepInput[LoopSpec, LoopData]) -> Stepped:
    info = activity.info()
    record = {
        "workflow": info.workflow_id,
        "step": step_input.step_key,
        "attempt": info.attempt,
        "at": time.time(),
    }
    print("STEP " + json.dumps(record), flush=True)
    await asyncio.sleep(step_input.spec.seconds)
    return Stepped()


ACTIVITIES = [step_impl]
