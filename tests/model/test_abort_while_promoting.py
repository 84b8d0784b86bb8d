"""Issue 9, bug 1, pinned down: an abort accepted while the canary's promotion workers run.

The abort passes the validator in ``Promoting`` and waits its turn while the workers run;
their results then carry the canary on to ``Succeeded``. The run must still end, and the
abort must still get an answer (applied, or superseded by the promotion that won). Before
the fix the run loop ended with the abort queued and the workflow waited for ever for its
update handler, Running in a final state with nothing scheduled.

The model test (``test_engine_model.py``) finds this on its own; this test keeps the one
sequence deterministic. Every wait is bounded, so the old code fails here instead of
hanging.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateStage

from models import canary as c
from models.operator import COMMAND_UPDATE, CommandReceipt, CommandRequest
from models.rollout_slots import QueueJoined
from tests.engine.helpers import status
from tests.model.subjects import CANARY
from tests.model.world import Run, World, start
from tests.waiting import eventually

pytestmark = pytest.mark.temporal

#: How long the canary may take to end once its workers answer: seconds, not minutes.
ANSWER_WITHIN_S = 20


async def promoting(world: World) -> Run:
    """A canary with ``skipAnalysis`` in Promoting, its promotion worker held open (the
    weight change before it is a local activity, answered at once)."""
    run = await start(world, CANARY, 2, "skip analysis", short_timers=False, short_history=False)
    assert CANARY.variants[2] == "skip analysis"
    initialize = await world.script.next_call(run.workflow_id, "canary.initialize")
    world.script.answer(
        initialize, c.Initialized(revision="r1", stable_revision="r0", needs_rollout=True)
    )
    slot = await world.script.next_call(run.workflow_id, "canary.request_slot")
    world.script.answer(slot, QueueJoined())
    await world.script.next_call(run.workflow_id, "canary.promote")
    return run


async def answer_its_workers(world: World, run: Run) -> tuple[bool, str]:
    """Answer every held worker as a healthy cluster would; say whether the run has ended
    (and, while it runs, in which state)."""
    for call in world.script.waiting(run.workflow_id):
        world.script.answer(call, CANARY.answers_for(call.name)[0].make(call.step, run.cluster))
    description = await run.handle.describe()
    if description.status not in (None, WorkflowExecutionStatus.RUNNING):
        return True, description.status.name
    return False, (await status(run.handle)).state


async def test_an_abort_accepted_while_promoting_is_answered_and_the_rollout_ends(world: World):
    run = await promoting(world)
    assert (await status(run.handle)).state == "Promoting"

    abort = await run.handle.start_update(
        COMMAND_UPDATE,
        CommandRequest(command="abort", by="alice", reason="bad numbers"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=CommandReceipt,
    )
    try:
        await eventually(
            lambda: answer_its_workers(world, run),
            lambda seen: seen[0],
            attempts=ANSWER_WITHIN_S * 4,
            pause=0.25,
            what="the canary to end once its workers answered",
        )
        receipt = await asyncio.wait_for(abort.result(), ANSWER_WITHIN_S)
        result = await asyncio.wait_for(run.handle.result(), ANSWER_WITHIN_S)
    finally:
        if (await run.handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await run.handle.terminate("test over")
        world.script.release(run.workflow_id)

    assert receipt.command == "abort" and receipt.state == "Promoting"
    assert result.final
    assert result.state == ("Aborted" if receipt.applied else "Succeeded")
