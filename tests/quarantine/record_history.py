"""Record the quarantine history replayed by ``test_quarantine_replay.py``.

Run ``python -m tests.quarantine.record_history`` ONLY when a change to
``workflows/quarantine.py`` is meant to change what the workflow does, and say so in the
commit: a quarantine stays open for hours or days, and every running one must replay on the
next worker version.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from models.operator import OperatorStatus, workflow_id
from tests.engine.helpers import command, wait_for
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.recording_activities import RECORDING_ACTIVITIES
from tests.temporal_env import start_dev_server
from worker_main import make_worker
from workflows.quarantine import QuarantineWorkflow

HISTORY = Path(__file__).parent / "histories" / "quarantine_escalated_released.json"


async def record() -> None:
    env = await start_dev_server()
    try:
        task_queue = f"record-{uuid.uuid4().hex[:6]}"
        async with make_worker(env.client, task_queue, [QuarantineWorkflow], RECORDING_ACTIVITIES):
            await deliver(env.client, task_queue, alert("shop", "payments"))
            handle = env.client.get_workflow_handle(
                workflow_id("quarantine", "shop", "payments"), result_type=OperatorStatus
            )
            await wait_for(handle, "Isolated")
            await deliver(env.client, task_queue, alert("shop", "payments"))  # a repeat
            await deliver(env.client, task_queue, alert("shop", "payments", status="resolved"))
            await command(handle, "escalate", by="carol", reason="customer data")
            await command(handle, "release", by="dave", reason="image rebuilt and verified")
            result: OperatorStatus = await handle.result()
            assert result.state == "Released", result.state
            history = await handle.fetch_history()
        HISTORY.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"recorded {len(history.events)} events into {HISTORY.name}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
