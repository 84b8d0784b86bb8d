"""Changes to the canary machine must not break rollouts that are already running.

The history was recorded from the end-to-end test of a healthy rollout on the local
cluster (weights 10 to 50, promotion, finalisation); see ``histories.py``.
"""

from __future__ import annotations

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tests.canary.histories import HISTORIES
from worker_main import PASSTHROUGH_MODULES
from workflows.canary import CanaryWorkflow


async def test_the_recorded_promotion_replays_without_nondeterminism():
    text = (HISTORIES / "canary_promoted.json").read_text()
    history = WorkflowHistory.from_json("canary/replay/podinfo", text)
    replayer = Replayer(
        workflows=[CanaryWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
