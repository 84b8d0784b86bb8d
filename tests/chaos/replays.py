"""After a chaos run: every run's history replays, and no workflow task failed on the way.

A worker replays a history only when it has none of the workflow in its cache (after a kill,
an eviction), so a nondeterminism bug shows in a run only if a kill falls at the wrong
moment. Replaying every history at the end finds it whatever the kills hit, and a workflow
task that failed during the run (the worker's own replay refusing the history) is reported
with its cause. Each history with a problem is written to the run's log directory, ready to
become a replay test (:mod:`tests.replay`).

One failure is Temporal's normal way and is only counted: ``UNHANDLED_COMMAND``, the server
refusing a task that closes the run (a continue-as-new) because new events (an Event
recorder's completion) arrived while it ran; the worker decides again with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHistory

from tests.replay import replay_failure

#: Not a defect: the server asks for a new decision because events arrived meanwhile.
EXPECTED_CAUSE = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND


def failed_tasks(history: WorkflowHistory, *, expected: bool = False) -> list[str]:
    """Each workflow task failure in ``history`` (only the expected ones if ``expected``):
    its event ID, cause and message."""
    found = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            continue
        attrs = event.workflow_task_failed_event_attributes
        if (attrs.cause == EXPECTED_CAUSE) != expected:
            continue
        cause = WorkflowTaskFailedCause.Name(attrs.cause)
        message = attrs.failure.message.splitlines()[0] if attrs.failure.message else ""
        found.append(f"event {event.event_id}: {cause}: {message[:300]}")
    return found


@dataclass
class Replays:
    histories: int = 0
    #: Workflow tasks the server sent back because events arrived meanwhile (expected).
    unhandled_command: int = 0
    problems: list[str] = field(default_factory=list)


async def every_run(temporal: Client, workflow_ids: Sequence[str]) -> list[WorkflowHistory]:
    """The history of every run of ``workflow_ids``, fetched once for all the checks."""
    found = []
    for workflow_id in workflow_ids:
        async for execution in temporal.list_workflows(f'WorkflowId = "{workflow_id}"'):
            handle = temporal.get_workflow_handle(workflow_id, run_id=execution.run_id)
            found.append(await handle.fetch_history())
    return found


async def replay_problems(
    histories: Sequence[WorkflowHistory], workflow: type[Any], save_dir: Path
) -> Replays:
    """Replay each of ``histories``; what is wrong with any of them."""
    replays = Replays()
    problems = replays.problems
    for history in histories:
        workflow_id, as_json = history.workflow_id, history.to_json()
        replays.histories += 1
        replays.unhandled_command += len(failed_tasks(history, expected=True))
        found = [f"workflow task failed at {f}" for f in failed_tasks(history)]
        failure = await replay_failure(workflow, workflow_id, as_json)
        if failure is not None:
            found.append(f"does not replay: {str(failure).splitlines()[0][:300]}")
        if found:
            saved = save_dir / f"history-{workflow_id.replace('/', '_')}-{history.run_id}.json"
            saved.write_text(json.dumps(json.loads(as_json), indent=1) + "\n")
            problems += [f"{workflow_id} run {history.run_id}: {p}" for p in found]
            problems.append(f"{workflow_id} run {history.run_id}: history in {saved.name}")
    return replays
