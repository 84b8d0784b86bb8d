"""Replay a recorded history exactly as a worker would run it: same sandbox, same converter."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.temporal_env import start_dev_server
from worker_main import make_worker, workflow_runner

#: What a recorder runs: given a client and the task queue, drive a workflow and return it.
Drive = Callable[[Client, str], Awaitable[WorkflowHandle[Any, Any]]]


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


async def record_history(
    path: Path,
    workflows: Sequence[type[Any]],
    activities: Sequence[Callable[..., Any]],
    drive: Drive,
) -> None:
    """Run ``drive`` on a fresh dev server with a worker, and write its workflow's history.

    Recorders call it ONLY when a change to workflow code is meant to change what running
    workflows do: the recorded history is what keeps them replayable across upgrades.
    """
    env = await start_dev_server()
    try:
        task_queue = f"record-{uuid.uuid4().hex[:6]}"
        async with make_worker(env.client, task_queue, list(workflows), list(activities)):
            handle = await drive(env.client, task_queue)
            history = await handle.fetch_history()
        path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"recorded {len(history.events)} events into {path.name}")
    finally:
        await env.shutdown()
