"""Workflow code changes must not break the replay of histories already recorded.

A rollout that runs for days is replayed by every new worker version; a change in the
engine that issues different commands for the same history would wedge it. The history
here was recorded by ``record_history.py`` from a real run: votes (one duplicated),
pause, resume, approval, a worker's result and completion.
"""

from __future__ import annotations

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tests.engine.record_history import HISTORY
from tests.engine.ticket_operator import TicketWorkflow
from worker_main import PASSTHROUGH_MODULES


async def test_the_recorded_ticket_history_replays_without_nondeterminism():
    history = WorkflowHistory.from_json("ticket/tests/replay", HISTORY.read_text())
    replayer = Replayer(
        workflows=[TicketWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
