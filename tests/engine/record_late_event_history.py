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
import json
import sys
import uuid
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from tests.engine.helpers import command, send, start, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow, release_apply
from tests.temporal_env import start_dev_server
from worker_main import make_worker

HISTORIES = Path(__file__).parent / "histories"


async def record(name: str) -> None:
    env = await start_dev_server()
    try:
        task_queue = f"record-{uuid.uuid4().hex[:6]}"
        async with make_worker(env.client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES):
            handle = await start(
                env.client, "ticket", task_queue, spec={"required_votes": 1, "hold_apply": True}
            )
            await send(handle, "Vote", "v1", voter="ann")
            await wait_for(handle, "InReview")
            await command(handle, "approve", by="carol")
            await wait_for(handle, "Applying")
            await send(handle, "Vote", "late", voter="bob")
            release_apply(handle.id)
            first = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
            for _ in range(200):
                if (await first.describe()).status != WorkflowExecutionStatus.RUNNING:
                    break
                await asyncio.sleep(0.05)
            history = await first.fetch_history()
            latest = env.client.get_workflow_handle(handle.id)
            if (await latest.describe()).status == WorkflowExecutionStatus.RUNNING:
                await latest.terminate("recorded")
        path = HISTORIES / f"{name}.json"
        path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"recorded {len(history.events)} events into {path.name}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1]))
