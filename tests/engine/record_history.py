"""Record the reference history replayed by ``test_replay.py``.

Run ``python -m tests.engine.record_history`` ONLY when a change to workflow code is
meant to change what workflows do, and say so in the commit: the recorded history is
what keeps every running rollout replayable across upgrades.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from models.operator import OperatorStatus
from tests.engine.helpers import command, send, start, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.temporal_env import start_dev_server
from worker_main import make_worker

HISTORY = Path(__file__).parent / "histories" / "ticket_approved.json"


async def record() -> None:
    env = await start_dev_server()
    try:
        task_queue = f"record-{uuid.uuid4().hex[:6]}"
        async with make_worker(env.client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES):
            handle = await start(env.client, "ticket", task_queue, spec={"required_votes": 2})
            await send(handle, "Vote", "v1", voter="ann")
            await send(handle, "Vote", "v1", voter="ann")
            await send(handle, "Vote", "v2", voter="bob")
            await wait_for(handle, "InReview")
            await command(handle, "pause", by="carol")
            await command(handle, "resume", by="carol")
            await command(handle, "approve", by="carol", reason="reviewed")
            result: OperatorStatus = await handle.result()
            assert result.state == "Done", result.state
            history = await handle.fetch_history()
        HISTORY.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"recorded {len(history.events)} events into {HISTORY.name}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
