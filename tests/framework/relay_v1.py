"""Version 1 of a small pinned operator, for the worker-versioning test (``relay_v2`` is next).

A relay waits for ``go`` and then ends; version 2 changes what ``go`` does. Only one of the
two modules is loaded by a worker process (``AUTOPILOT_OPERATOR_MODULES``), each as the same
workflow type ``relay``, as two builds of one operator would be.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from temporalio import workflow

from models.operator import OperatorInput, OperatorStatus
from tests.framework.relay_models import RelayData, RelaySpec
from workflows.engine import Command, Ctx, Operator, OperatorWorkflow
from workflows.engine.versioning import pinned
from workflows.registry import register


def stamp(ctx: Ctx[RelaySpec, RelayData]) -> RelayData:
    return RelayData(version="v1")


relay = Operator("relay", spec=RelaySpec, data=RelayData, initial="Waiting")
relay.state("Waiting", settled=True, doc="waits for go")
relay.state("Done", final=True)
relay.on("Waiting", Command("go", doc="Finish the relay."), go="Done", do=stamp)
relay.check()


@register
@workflow.defn(name="relay", versioning_behavior=pinned())
class RelayWorkflow(OperatorWorkflow):
    operator = relay

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        return await self.run_operator(input)
