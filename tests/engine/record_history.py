"""Record the reference history replayed by ``test_replay.py``.

Run ``python -m tests.engine.record_history`` ONLY when a change to workflow code is
meant to change what workflows do, and say so in the commit: the recorded history is
what keeps every running rollout replayable across upgrades.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from models.operator import OperatorStatus
from tests.engine.helpers import command, send, start, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.replay import record_history

HISTORY = Path(__file__).parent / "histories" / "ticket_approved.json"


async def _approve(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    handle = await start(client, "ticket", task_queue, spec={"required_votes": 2})
    await send(handle, "Vote", "v1", voter="ann")
    await send(handle, "Vote", "v1", voter="ann")
    await send(handle, "Vote", "v2", voter="bob")
    await wait_for(handle, "InReview")
    await command(handle, "pause", by="carol")
    await command(handle, "resume", by="carol")
    await command(handle, "approve", by="carol", reason="reviewed")
    result: OperatorStatus = await handle.result()
    assert result.state == "Done", result.state
    return handle


async def record() -> None:
    await record_history(HISTORY, [TicketWorkflow], TICKET_ACTIVITIES, _approve)


if __name__ == "__main__":
    asyncio.run(record())
