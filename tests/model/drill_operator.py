"""A small operator built for the model test: every engine path in seven states.

The canary and the quarantine are the real subjects of the model test; this one adds what
they reach only slowly or not at all: a command whose guard refuses it (``approve`` needs
a vote), a worker failure no transition handles (the engine's own ``retry``), a worker
result that leads straight into a final state that runs a worker of its own, a timer that
leads back to a worker, and a watcher event that ends the machine from anywhere. Its
workers are the model test's scripted stand-ins; nothing here does I/O.
"""

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

from models.operator import OperatorInput, OperatorStatus
from workflows.engine import (
    ANY,
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    Event,
    Operator,
    OperatorWorkflow,
)


class DrillSpec(BaseModel):
    """How long ``Cooling`` waits before preparing again."""

    cooling_s: float = Field(default=1.0, ge=0.5, le=86_400)


class DrillData(BaseModel):
    """What the drill counts, so that status shows which effects ran."""

    votes: int = 0
    preparations: int = 0
    works: int = 0


class Vote(Event):
    """A watcher's vote; ``approve`` needs one."""

    voter: str


class Stop(Event):
    """A watcher says the target is gone: stop from any state."""

    reason: str = "stopped"


class Prepared(Event):
    """What ``drill.prepare`` returns."""

    ready: bool


class Worked(Event):
    """What ``drill.work`` returns."""

    ok: bool


D = Ctx[DrillSpec, DrillData]


def cooling(ctx: D) -> timedelta:
    """``cooling_s`` of the spec."""
    return timedelta(seconds=ctx.spec.cooling_s)


def ready(ctx: D) -> bool:
    """Prepared: ready to wait for approval."""
    return bool(ctx.event.ready)


def has_votes(ctx: D) -> bool:
    """``approve`` needs at least one vote."""
    return ctx.data.votes >= 1


def worked(ctx: D) -> bool:
    """Worked: the work succeeded."""
    return bool(ctx.event.ok)


def count_preparation(ctx: D) -> DrillData:
    """One more preparation."""
    return ctx.data.model_copy(update={"preparations": ctx.data.preparations + 1})


def count_vote(ctx: D) -> DrillData:
    """One more vote."""
    return ctx.data.model_copy(update={"votes": ctx.data.votes + 1})


def count_work(ctx: D) -> DrillData:
    """One more work result."""
    return ctx.data.model_copy(update={"works": ctx.data.works + 1})


prepare = ActivityRef("drill.prepare", returns=Prepared, summary="prepare")
work = ActivityRef("drill.work", returns=Worked, summary="do the work")
report = ActivityRef("drill.report", summary="report the result")

drill = Operator(
    "drill",
    spec=DrillSpec,
    data=DrillData,
    initial="Preparing",
    events=[Vote, Stop],
    description="A drill for the engine's model test: prepare, wait for approval, work.",
)
# A failure of prepare has no transition: the engine records the error and accepts retry.
drill.state("Preparing", run=[prepare], doc="preparing; a failure waits for retry")
drill.state("Cooling", after=cooling, then="Preparing", doc="not ready: wait, then prepare again")
drill.state("Waiting", settled=True, doc="ready; waits for a vote and approve")
drill.state("Working", run=[work], doc="working; only pause is accepted")
drill.state("Broken", settled=True, failed=True, doc="the work failed; retry or abort")
drill.state("Done", final=True, run=[report], doc="worked; the report worker runs last")
drill.state("Stopped", final=True, doc="aborted, or stopped by a watcher")

drill.on("Preparing", Prepared, go="Waiting", when=ready, do=count_preparation)
drill.on("Preparing", Prepared, go="Cooling", do=count_preparation)
drill.on("Waiting", Vote, go=None, do=count_vote)
drill.on("Waiting", Command("approve"), go="Working", when=has_votes)
drill.on("Working", Worked, go="Done", when=worked, do=count_work)
drill.on("Working", Worked, go="Broken", do=count_work)
drill.on("Working", ActivityFailed, go="Broken")
drill.on("Broken", Command("retry"), go="Working")
drill.on(ANY, Stop, go="Stopped")
drill.on(["Preparing", "Cooling", "Waiting", "Broken"], Command("abort"), go="Stopped")
drill.check()


@workflow.defn(name="drill")
class DrillWorkflow(OperatorWorkflow):
    """One drill per target; ID ``drill/<namespace>/<name>``."""

    operator = drill

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the drill until Done or Stopped."""
        return await self.run_operator(input)
