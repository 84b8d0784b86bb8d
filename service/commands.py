"""Giving a human command to an operator workflow: the one way the CLI and the watchers do it.

A command is the Temporal update ``models.operator.COMMAND_UPDATE``. It goes in two stages,
so a busy machine never leaves the sender guessing: the workflow's validator *accepts* (or
refuses, before anything enters history) at once, then the machine *handles* it when the
worker of its current step is done, and answers with a :class:`CommandReceipt`.

The CLI sends commands given on a terminal (``autopilot approve``); the approvals watcher
sends the ones given as ``Approval`` objects, with the update ID derived from the object so a
redelivery gets the first outcome back instead of commanding twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from models.operator import COMMAND_UPDATE, CommandReceipt, CommandRequest

#: However short the caller's wait, a worker gets this long to accept or refuse a command.
ACCEPT_TIMEOUT_S = 30.0


class CommandError(Exception):
    """A command that was not accepted; ``str()`` says why, for a human."""


class CommandRefused(CommandError):
    """The workflow's validator refused the command (its state does not take it)."""


class NoSuchWorkflow(CommandError):
    """No workflow has that ID."""


class WorkflowFinished(CommandError):
    """The workflow has ended; it takes no commands. ``execution`` says how it ended."""

    def __init__(self, message: str, execution: str) -> None:
        super().__init__(message)
        self.execution = execution


class NotAnswered(CommandError):
    """No worker accepted or refused the command in time."""


def execution_name(status: WorkflowExecutionStatus | None) -> str:
    """``Running``, ``Completed``, ``Failed``, ... as Temporal's UI names them."""
    return status.name.title().replace("_", "") if status else "Unknown"


async def running_handle(client: Client, workflow_id: str) -> WorkflowHandle[Any, Any]:
    """The latest run of ``workflow_id``, if it is running.

    Raises:
        NoSuchWorkflow: nothing has that ID.
        WorkflowFinished: its latest run has ended.
    """
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NoSuchWorkflow(f"no workflow {workflow_id}") from None
        raise
    execution = execution_name(description.status)
    if execution != "Running":
        raise WorkflowFinished(
            f"{workflow_id} has finished ({execution}); it accepts no commands", execution
        )
    return handle


def refusal(request: CommandRequest, error: WorkflowUpdateFailedError) -> CommandRefused:
    """The workflow's own message for a refused command."""
    cause = error.cause
    message = cause.message if isinstance(cause, FailureError) else str(cause or error)
    return CommandRefused(f"{request.command} refused: {message}")


async def accept(
    handle: WorkflowHandle[Any, Any],
    request: CommandRequest,
    *,
    timeout: float = ACCEPT_TIMEOUT_S,
    update_id: str | None = None,
) -> WorkflowUpdateHandle[CommandReceipt]:
    """Send ``request`` and wait until the workflow accepted it (durably recorded).

    ``update_id``: the same ID sent again to the same run returns the first update's handle
    (and outcome) instead of a second command.

    Raises:
        CommandRefused: the validator refused it.
        NotAnswered: no worker answered within ``timeout`` seconds.
    """
    try:
        return await asyncio.wait_for(
            handle.start_update(
                COMMAND_UPDATE,
                request,
                id=update_id,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=CommandReceipt,
            ),
            timeout=timeout,
        )
    except WorkflowUpdateFailedError as error:
        raise refusal(request, error) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise NotAnswered(
            f"{handle.id} did not answer within {timeout:g}s; the command was not accepted"
        ) from None


async def outcome(
    update: WorkflowUpdateHandle[CommandReceipt], request: CommandRequest, wait: float | None
) -> CommandReceipt | None:
    """What the machine did with an accepted command; ``None`` if not handled within ``wait``.

    ``wait=None`` waits as long as it takes (the approvals watcher, which owns the wait).

    Raises:
        CommandRefused: a rejection that surfaced only with the result.
        NoSuchWorkflow: the run went away.
    """
    try:
        result = update.result()
        receipt: CommandReceipt = await (
            result if wait is None else asyncio.wait_for(result, timeout=wait)
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None
    except WorkflowUpdateFailedError as error:
        raise refusal(request, error) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND or "not found" in error.message.lower():
            raise NoSuchWorkflow(f"no workflow {update.workflow_id}") from None
        raise
    return receipt
