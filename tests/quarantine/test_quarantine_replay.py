"""Changes to the quarantine workflow must not break quarantines that are already open.

The history was recorded by ``record_history.py`` from a real run on the dev server: an
alert (and its repeat), its resolution, ``escalate``, then ``release``.
"""

from __future__ import annotations

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tests.quarantine.record_history import HISTORY
from worker_main import PASSTHROUGH_MODULES
from workflows.quarantine import QuarantineWorkflow


async def test_the_recorded_quarantine_history_replays_without_nondeterminism():
    history = WorkflowHistory.from_json("quarantine/shop/payments", HISTORY.read_text())
    replayer = Replayer(
        workflows=[QuarantineWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
