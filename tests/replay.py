"""Replay a recorded history exactly as a worker would run it: same sandbox, same converter."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker_main import workflow_runner


async def replay_failure(
    workflow: type[Any], workflow_id: str, history_json: str
) -> Exception | None:
    """Why replaying ``history_json`` with today's ``workflow`` code fails; None if it does not."""
    replayer = Replayer(
        workflows=[workflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(workflow_id, history_json)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure
