"""A small operator used only to test the engine: a change ticket that needs approval.

It exercises every engine feature (guards, effects, timers, commands, worker results,
worker failures) without touching Kubernetes, so engine tests run on the dev server and
the time-skipping server in seconds. Its workers record what they were called with
instead of doing I/O.
"""

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

from models.approvals import ApproverRules
from models.operator import OperatorInput, OperatorStatus, StepInput
from workflows.engine import (
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    Event,
    Operator,
    OperatorWorkflow,
)
from workflows.registry import register


class TicketSpec(BaseModel):
    required_votes: int = 2
    review_hours: float = 24
    fail_apply: bool = False
    hold_apply: bool = False
    approvers: ApproverRules | None = None


class TicketData(BaseModel):
    votes: int = 0
    applied_by_worker: bool = False
    applies: int = 0


class Vote(Event):
    voter: str


class Applied(Event):
    change_id: str


def enough_votes(ctx: Ctx[TicketSpec, TicketData]) -> bool:
    return ctx.data.votes + 1 >= ctx.spec.required_votes


def count_vote(ctx: Ctx[TicketSpec, TicketData]) -> TicketData:
    return ctx.data.model_copy(update={"votes": ctx.data.votes + 1})


def mark_applied(ctx: Ctx[TicketSpec, TicketData]) -> TicketData:
    return ctx.data.model_copy(update={"applied_by_worker": True, "applies": ctx.data.applies + 1})


def review_time(ctx: Ctx[TicketSpec, TicketData]) -> timedelta:
    return timedelta(hours=ctx.spec.review_hours)


apply_change = ActivityRef(
    "ticket.apply_change", returns=Applied, max_attempts=2, summary="apply the change"
)
announce = ActivityRef("ticket.announce")

ticket = Operator(
    "ticket",
    spec=TicketSpec,
    data=TicketData,
    initial="Open",
    events=[Vote],
    search_attributes={},
    details=lambda ctx: f"votes: {ctx.data.votes}",
    description="A change ticket: votes, then approval, then the change is applied.",
)
ticket.state("Open", run=[announce], settled=True, doc="collecting votes")
ticket.state("InReview", after=review_time, then="Expired", doc="waiting for approval")
ticket.state("Applying", run=[apply_change])
ticket.state("Done", final=True)
ticket.state("Expired", final=True)
ticket.state("Broken", settled=True, doc="the change failed; retry or abort")
ticket.state("Cancelled", final=True)

ticket.on("Open", Vote, go="InReview", when=enough_votes, do=count_vote)
ticket.on("Open", Vote, go=None, do=count_vote, doc="count it and keep waiting")
ticket.on("InReview", Command("approve"), go="Applying")
ticket.on("Applying", Applied, go="Done", do=mark_applied)
ticket.on("Applying", ActivityFailed, go="Broken")
ticket.on("Broken", Command("retry"), go="Applying")
ticket.on(["Open", "InReview", "Broken"], Command("abort"), go="Cancelled")
ticket.check()


@register
@workflow.defn(name="ticket")
class TicketWorkflow(OperatorWorkflow):
    operator = ticket

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        return await self.run_operator(input)


CALLS: list[tuple[str, str, int]] = []

#: Workflow ID to the gate its ``apply_change`` waits at when the spec says ``hold_apply``,
#: so a test can act while the worker runs and then let it finish (``release_apply``).
HELD: dict[str, asyncio.Event] = {}


def held_gate(workflow_id: str) -> asyncio.Event:
    """The gate a held ``apply_change`` of ``workflow_id`` waits at."""
    return HELD.setdefault(workflow_id, asyncio.Event())


def release_apply(workflow_id: str) -> None:
    """Let the held ``apply_change`` of ``workflow_id`` return."""
    held_gate(workflow_id).set()


@activity.defn(name="ticket.announce")
async def announce_impl(step: StepInput[TicketSpec, TicketData]) -> None:
    CALLS.append(("announce", step.state, step.data.votes))


@activity.defn(name="ticket.apply_change")
async def apply_change_impl(step: StepInput[TicketSpec, TicketData]) -> Applied:
    CALLS.append(("apply", step.state, step.data.votes))
    if step.spec.hold_apply:
        await held_gate(step.workflow_id).wait()
    if step.spec.fail_apply:
        raise RuntimeError("the change could not be applied")
    return Applied(change_id=step.step_key)


TICKET_ACTIVITIES = [announce_impl, apply_change_impl]
#: What the worker collects when this module is named in AUTOPILOT_OPERATOR_MODULES.
ACTIVITIES = TICKET_ACTIVITIES
