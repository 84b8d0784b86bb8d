"""Record the quarantine history replayed by ``test_quarantine_replay.py``.

Run ``python -m tests.quarantine.record_history`` ONLY when a change to
``workflows/quarantine.py`` is meant to change what the workflow does, and say so in the
commit: a quarantine stays open for hours or days, and every running one must replay on the
next worker version.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from models.operator import OperatorStatus, workflow_id
from tests.engine.helpers import command, wait_for
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.recording_activities import RECORDING_ACTIVITIES
from tests.replay import record_history
from workflows.quarantine import QuarantineWorkflow

HISTORY = Path(__file__).parent / "histories" / "quarantine_escalated_released.json"


async def _escalate_and_release(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    await deliver(client, task_queue, alert("shop", "payments"))
    handle = client.get_workflow_handle(
        workflow_id("quarantine", "shop", "payments"), result_type=OperatorStatus
    )
    await wait_for(handle, "Isolated")
    await deliver(client, task_queue, alert("shop", "payments"))  # a repeat
    await deliver(client, task_queue, alert("shop", "payments", status="resolved"))
    await command(handle, "escalate", by="carol", reason="customer data")
    await command(handle, "release", by="dave", reason="image rebuilt and verified")
    result: OperatorStatus = await handle.result()
    assert result.state == "Released", result.state
    return handle


async def record() -> None:
    await record_history(HISTORY, [QuarantineWorkflow], RECORDING_ACTIVITIES, _escalate_and_release)


if __name__ == "__main__":
    asyncio.run(record())
