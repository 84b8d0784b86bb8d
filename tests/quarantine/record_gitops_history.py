"""Record the quarantine history with the GitOps path, replayed by ``test_quarantine_replay.py``.

An alert isolates ``shop/ledger`` and a pull request records the policy (merged by webhook);
``release`` opens the release pull request, one poll finds it open, the webhook is lost and
the next poll finds it merged; the GitOps engine's prune is seen and the run ends Released.
Run ``python -m tests.quarantine.record_gitops_history`` ONLY for an intended change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from models.operator import OperatorStatus, workflow_id
from tests.engine.helpers import command, status, wait_for
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.pull_requests import deliver_pull_request, pull_request_event
from tests.quarantine.recording_activities import (
    GITOPS,
    POLLED,
    RECORD_PR,
    RECORDING_ACTIVITIES,
    calls_for,
)
from tests.replay import record_history
from workflows.quarantine import QuarantineWorkflow

NAME = f"{GITOPS}-ledger"
HISTORY = Path(__file__).parent / "histories" / "quarantine_released_through_git.json"


async def _release_through_git(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    await deliver(client, task_queue, alert("shop", NAME))
    handle = client.get_workflow_handle(
        workflow_id("quarantine", "shop", NAME), result_type=OperatorStatus
    )
    await wait_for(handle, "Isolated")
    while (await status(handle)).data["git"] is None:
        await asyncio.sleep(0.05)
    merged = pull_request_event("shop", NAME, RECORD_PR, merged=True, by="ada")
    await deliver_pull_request(client, task_queue, merged)
    await command(handle, "release", by="dave", reason="image rebuilt and verified")
    await wait_for(handle, "ReleaseInReview")
    while calls_for(NAME).count("poll_release") < 2:  # one poll answered "open", then a timer
        await asyncio.sleep(0.05)
    POLLED[NAME] = "merged"
    result: OperatorStatus = await handle.result()
    assert result.state == "Released", result.state
    return handle


async def record() -> None:
    await record_history(HISTORY, [QuarantineWorkflow], RECORDING_ACTIVITIES, _release_through_git)


if __name__ == "__main__":
    asyncio.run(record())
