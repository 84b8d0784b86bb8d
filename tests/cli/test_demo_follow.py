"""The demo follows the rollout of the revision just shipped, not the one before it."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from cli.demo_rollout import is_over, is_previous, status_of_run
from models.operator import EngineSettings, OperatorInput, OperatorStatus, Target
from tests.engine.helpers import command, wait_for


def _status(state: str, outcome: str, data: dict[str, Any]) -> OperatorStatus:
    return OperatorStatus(
        workflow_id="canary/demo/podinfo",
        operator="canary",
        target=Target(namespace="demo", name="podinfo"),
        state=state,
        final=outcome != "running",
        settled=outcome != "running",
        outcome=outcome,
        paused=False,
        since=datetime(2026, 12, 2, tzinfo=UTC),
        data=data,
    )


def test_the_previous_rollouts_final_state_is_not_the_new_ones_outcome() -> None:
    """A workflow that has not yet handled v2's signal still shows v1 Succeeded."""
    v1_done = _status("Succeeded", "succeeded", {"revision": "v1hash", "outcome": "initialized"})
    assert not is_over(v1_done, "v2hash")


def test_the_previous_rollouts_final_state_is_not_shown_as_the_new_ones() -> None:
    v1_done = _status("Succeeded", "succeeded", {"revision": "v1hash", "outcome": "initialized"})
    assert is_previous(v1_done, "v2hash")
    assert not is_previous(_status("Initializing", "running", {}), "v2hash")
    v2_done = _status("Succeeded", "succeeded", {"revision": "v2hash", "outcome": "promoted"})
    assert not is_previous(v2_done, "v2hash")


def test_a_rollout_that_is_still_initializing_is_not_over() -> None:
    assert not is_over(_status("Initializing", "running", {}), "v2hash")


def test_the_announced_revision_in_a_final_state_is_over() -> None:
    v2_done = _status("Succeeded", "succeeded", {"revision": "v2hash", "outcome": "promoted"})
    assert is_over(v2_done, "v2hash")


@pytest.mark.temporal
async def test_a_finished_runs_status_is_its_own_even_once_a_newer_run_has_started(tickets):
    """The watcher may start the next run between the demo's describe and its result call."""
    first = await tickets.start()
    await wait_for(first, "Open")
    await command(first, "abort")
    finished = await first.result()
    described = await first.describe()
    newer = await tickets.client.start_workflow(
        "ticket",
        OperatorInput(target=finished.target, spec={}, engine=EngineSettings()),
        id=first.id,
        task_queue=tickets.task_queue,
    )
    try:
        await wait_for(newer, "Open")  # the newer run never completes on its own
        status = await asyncio.wait_for(
            status_of_run(
                tickets.client, first.id, described.run_id, WorkflowExecutionStatus.COMPLETED
            ),
            timeout=60,  # a guard: following the newer run would wait for ever
        )
    finally:
        await newer.terminate("test over")

    assert status.state == "Cancelled"
