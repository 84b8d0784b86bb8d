"""Version 2 of the relay (see ``relay_v1``): ``go`` now passes through a new state first.

Its machine would not replay version 1's histories (a new state, new transitions): only
pinning keeps the runs that started on version 1 correct.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from datetime import timedelta

from temporalio import workflow

from models.operator import OperatorInput, OperatorStatus
from tests.framework.relay_models import RelayData, RelaySpec
from workflows.engine import Command, Ctx, Operator, OperatorWorkflow
from workflows.engine.versioning import pinned
from workflows.registry import register


def stamp(ctx: Ctx[RelaySpec, RelayData]) -> RelayData:
    return RelayData(version="v2")


relay = Operator("relay", spec=RelaySpec, data=RelayData, initial="Waiting")
relay.state("Waiting", settled=True, doc="waits for go")
relay.state("Handing", after=timedelta(milliseconds=10), then="Done", doc="hands over")
relay.state("Done", final=True)
relay.on("Waiting", Command("go", doc="Finish the relay."), go="Handing", do=stamp)
relay.check()


@register
@workflow.defn(name="relay", versioning_behavior=pinned())
class RelayWorkflow(OperatorWorkflow):
    operator = relay

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        return await self.run_operator(input)
