"""Starting workflows: one call for the watchers, the webhooks, the CLI and the activities.

Why one: the Temporal UI lists workflows by ID and type, and every rollout looks alike
there. Each start sets a **static summary** (one line in the list and on the page: operator,
target, revision over stable) and **static details** (who started it, from which event);
Temporal keeps both with the run, unchanged. What changes while it runs is the workflow's
current details (``workflows/engine/runtime.py``). A run that continues-as-new has
neither: Temporal does not carry them over, and the current details take their place.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from models.operator import EventEnvelope, OperatorInput

#: How long a worker may hold one workflow task, set at every start so that it is a choice. A
#: task in flight on a worker that dies is handed on only after this long (Temporal's default
#: is 10 s). 4 s livelocked the long chaos run when runs reached 3,584 events: on a loaded
#: 2-core machine their replays took over 5 s, timed out at every attempt, and the server's
#: backoff between attempts left a rollout stuck for minutes. With runs bounded at 1,024
#: events and 4 workflow tasks at once, a replay fits in 5 s (docs/operations.md).
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)

#: The longest summary: one line in the UI's list.
MAX_SUMMARY = 200
#: The longest details (markdown).
MAX_DETAILS = 2000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def revision_of(envelope: EventEnvelope | None) -> str | None:
    """The revision an event announces (``NewRevision``'s ``revision``), if any."""
    value = envelope.payload.get("revision") if envelope is not None else None
    return value if isinstance(value, str) and value else None


def operator_summary(
    operator: str, input: OperatorInput, revision: str | None, stable: str | None
) -> str:
    """``canary demo/podinfo: 6558a03f5fe31261 over 8cb26c581229ef1f``."""
    target = f"{input.target.namespace}/{input.target.name}"
    what = ""
    if revision and stable and revision != stable:
        what = f": {revision} over {stable}"
    elif revision:
        what = f": {revision}"
    return _cut(f"{operator} {target}{what}", MAX_SUMMARY)


def operator_details(
    operator: str,
    input: OperatorInput,
    started_by: str,
    envelope: EventEnvelope | None,
    revision: str | None,
    stable: str | None,
) -> str:
    """Markdown: operator and target, revisions, who started it and with which event."""
    target = input.target
    lines = [f"**{operator}** {target.kind} `{target.namespace}/{target.name}`"]
    if revision:
        over = f" over `{stable}`" if stable and stable != revision else ""
        lines.append(f"revision `{revision}`{over}")
    lines.append(f"started by {started_by}")
    if envelope is not None:
        lines.append(f"on `{envelope.type}` `{envelope.id}` from {envelope.source}")
    return _cut("\n\n".join(lines), MAX_DETAILS)


async def start_operator(
    client: Client,
    operator: str,
    input: OperatorInput,
    *,
    task_queue: str,
    started_by: str,
    signal: tuple[str, EventEnvelope] | None = None,
    stable: str | None = None,
    rpc_timeout: timedelta | None = None,
    result_type: type | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start an operator's workflow for ``input.target`` (or signal the running one).

    Args:
        client: connected with the pydantic converter (``service.temporal.connect``).
        operator: the operator's name, which is the workflow type.
        input: the workflow input; its target names the workflow ID.
        task_queue: the workers' task queue.
        started_by: who starts it, for people: ``alice (autopilot canary start)``, the
            watcher and its client identity, the webhook.
        signal: signal name and envelope for signal-with-start (the event that starts it).
        stable: the revision running now, when the starter knows it.
        rpc_timeout: the deadline of the start call.
        result_type: what the workflow returns, for the handle.
    """
    envelope = signal[1] if signal is not None else None
    revision = revision_of(envelope)
    options: dict[str, Any] = {}
    if signal is not None:
        options.update(start_signal=signal[0], start_signal_args=[signal[1]])
    if rpc_timeout is not None:
        options["rpc_timeout"] = rpc_timeout
    if result_type is not None:
        options["result_type"] = result_type
    return await client.start_workflow(
        operator,
        input,
        id=input.target.workflow_id(operator),
        task_queue=task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        static_summary=operator_summary(operator, input, revision, stable),
        static_details=operator_details(operator, input, started_by, envelope, revision, stable),
        **options,
    )
