"""Record the histories of a vote that arrives as the ticket finishes (``test_replay.py``).

``python -m tests.engine.record_late_event_history NAME`` writes ``histories/NAME.json``:
the ticket is approved, its held worker runs, a vote arrives, the worker returns and the
machine reaches ``Done`` with the vote still queued. Recorded once with the engine from
before the ``carry-late-events-to-a-new-run`` patch (``ticket_late_vote_unpatched``: the
run completes, the vote is dropped) and once with it (``ticket_late_vote_patched``: the run
continues as new). Both must replay with today's code.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from tests.engine.helpers import command, send, start, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow, release_apply
from tests.replay import record_history

HISTORIES = Path(__file__).parent / "histories"


async def _late_vote(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    handle = await start(
        client, "ticket", task_queue, spec={"required_votes": 1, "hold_apply": True}
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "approve", by="carol")
    await wait_for(handle, "Applying")
    await send(handle, "Vote", "late", voter="bob")
    release_apply(handle.id)
    first = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    for _ in range(200):
        if (await first.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    latest = client.get_workflow_handle(handle.id)
    if (await latest.describe()).status == WorkflowExecutionStatus.RUNNING:
        await latest.terminate("recorded")
    return first


async def record(name: str) -> None:
    await record_history(
        HISTORIES / f"{name}.json", [TicketWorkflow], TICKET_ACTIVITIES, _late_vote
    )


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1]))
