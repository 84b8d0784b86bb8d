"""``autopilot approve | promote | pause | resume | abort | retry``: human commands.

Each is a Temporal update (``models.operator.COMMAND_UPDATE``) carrying a
:class:`~models.operator.CommandRequest` with who gives it and why. The workflow's
validator refuses a command its current state does not accept before it enters history;
the CLI prints that message as it is and exits 1. An accepted command is recorded in the
workflow (status shows who and why), and the receipt says what it did.

Two stages, so that a busy machine does not leave the user guessing: first the command is
*accepted* (validated and durably recorded), then the machine *handles* it, which may wait
for the worker running the current step. Every accepted command gets an outcome: *applied*,
or *superseded* when the machine had moved on by the time it was handled (for example an
``abort`` accepted while the promotion's workers ran, after which the canary had already
succeeded). The CLI waits up to ``--wait`` seconds for that outcome and prints it; the exit
code says which it was (0 applied, 1 superseded, 3 still queued when the wait ran out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from pydantic import ValidationError
from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from cli.connection import (
    AddressOption,
    Endpoint,
    NamespaceOption,
    open_client,
    resolve,
    settings,
)
from cli.errors import CliError, Exit, friendly, run
from cli.output import Format, OutputOption, console, dump
from cli.targets import (
    DEFAULT_OPERATOR,
    KubeNamespaceOption,
    OperatorOption,
    TargetArgument,
    describe_workflow,
    execution_name,
    temporal_errors,
    unknown,
    workflow_id_of,
)
from cli.views import receipt_view
from models.errors import describe
from models.operator import APPLIED, COMMAND_UPDATE, CommandReceipt, CommandRequest

#: The commands, with what each one asks of the machine (``--help`` text).
COMMANDS: dict[str, str] = {
    "approve": "Approve the gate the machine waits at (e.g. a canary's promotion gate).",
    "promote": "Promote now, skipping the remaining steps (canary).",
    "pause": "Pause: timers freeze and watcher events wait; commands still work.",
    "resume": "Resume a paused machine; timers continue with the time they had left.",
    "abort": "Abort: the operator undoes its change (a canary routes all traffic back).",
    "retry": "Retry after a failure (a rolled-back canary, or a worker that failed).",
    "release": "Release a quarantined service: its deny policy is removed (quarantine).",
    "remediate": "Mark a quarantined service remediated; the isolation stays (quarantine).",
    "escalate": "Escalate a quarantine to security now, before its timer (quarantine).",
}

ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why; recorded with the command.")
]
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Who gives the command. Default: AUTOPILOT_TEMPORAL_IDENTITY, else the local user.",
        show_default=False,
    ),
]
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for the outcome of an accepted command (0: return once it is "
        "accepted). Exit 0 applied, 1 superseded, 3 still queued.",
    ),
]

#: However short ``--wait`` is, a worker gets this long to accept or refuse the command.
ACCEPT_TIMEOUT_S = 30.0


def refused(request: CommandRequest, error: WorkflowUpdateFailedError) -> CliError:
    """The workflow's own message for a refused command (exit 1)."""
    cause = error.cause
    message = cause.message if isinstance(cause, FailureError) else str(cause or error)
    return CliError(f"{request.command} refused: {message}")


async def send_command(
    endpoint: Endpoint, workflow: str, request: CommandRequest, wait: float
) -> CommandReceipt | None:
    """Send ``request``; the receipt, or ``None`` if it was accepted but not acted on yet.

    Raises:
        CliError: Unknown workflow (4), finished workflow or refused command (1).
    """
    client = await open_client(endpoint, identity=request.by)
    handle, description = await describe_workflow(client, endpoint, workflow)
    execution = execution_name(description.status)
    if execution != "Running":
        raise CliError(
            f"{workflow} has finished ({execution}); it accepts no commands",
            hint=f"'autopilot status {workflow}' shows how it ended",
        )
    try:
        with temporal_errors(endpoint, workflow):
            update = await asyncio.wait_for(
                handle.start_update(
                    COMMAND_UPDATE,
                    request,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    result_type=CommandReceipt,
                ),
                timeout=max(wait, ACCEPT_TIMEOUT_S),
            )
    except WorkflowUpdateFailedError as error:
        raise refused(request, error) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise CliError(
            f"{workflow} did not answer within {max(wait, ACCEPT_TIMEOUT_S):g}s; the command "
            "was not accepted",
            hint="is a worker running? 'autopilot worker' starts one",
        ) from None
    if wait == 0:
        return None
    try:
        receipt: CommandReceipt = await asyncio.wait_for(update.result(), timeout=wait)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None
    except WorkflowUpdateFailedError as error:
        # A rejection by the validator surfaces here: accepted-stage calls return at once.
        raise refused(request, error) from None
    except RPCError as error:
        if "not found" in error.message.lower():
            raise unknown(workflow) from None
        raise
    return receipt


def make_command(name: str, summary: str, operator: str | None = None) -> Callable[..., None]:
    """The callback of command ``name``: ``autopilot NAME`` or ``autopilot OPERATOR NAME``.

    With ``operator`` (the ``autopilot <operator> <command>`` form) the operator is implied:
    TARGET may be ``namespace/name`` as well as a workflow ID or a name with ``-n``.
    """
    implied = operator

    def command(
        target: TargetArgument,
        namespace: KubeNamespaceOption = None,
        operator: OperatorOption = implied or DEFAULT_OPERATOR,
        reason: ReasonOption = None,
        as_: AsOption = None,
        wait: WaitOption = 120.0,
        output: OutputOption = Format.TABLE,
        address: AddressOption = None,
        temporal_namespace: NamespaceOption = None,
    ) -> None:
        if implied is not None and namespace is None and target.count("/") == 1:
            namespace, target = target.split("/")
        workflow = workflow_id_of(target, namespace, operator)
        endpoint = resolve(address, temporal_namespace)
        by = as_ if as_ is not None else settings().identity
        try:
            request = CommandRequest(command=name, by=by, reason=reason)
        except ValidationError as error:
            raise CliError(f"invalid command: {describe(error)}", Exit.INVALID) from None
        receipt = run(send_command(endpoint, workflow, request, wait))
        if receipt is None:
            waited = f"within {wait:g}s" if wait else "yet (--wait 0)"
            message = (
                f"{name} accepted from {by} for {workflow} and queued: the machine has not "
                f"handled it {waited}, as a worker of its current step is still running; it "
                f"will, and 'autopilot status {workflow}' shows the outcome"
            )
            if output.human:
                console(output).print(f"[yellow]…[/] {message}")
            else:
                dump(
                    {"command": name, "by": by, "accepted": True, "outcome": None},
                    output,
                )
            raise typer.Exit(0 if wait == 0 else Exit.WAITING)
        if output.human:
            console(output).print(receipt_view(receipt, workflow))
        else:
            dump(receipt.model_dump(mode="json"), output)
        if receipt.outcome != APPLIED:
            raise typer.Exit(Exit.FAILED)

    command.__name__ = f"{name.replace('-', '_')}_command"
    command.__doc__ = (
        f"{summary}\n\nRecords who (--as) and why (--reason); a command the current state "
        "does not accept is refused with the workflow's message (exit 1)."
    )
    return friendly(command)


#: One Typer callback per command name.
CALLBACKS: dict[str, Callable[..., None]] = {
    name: make_command(name, text) for name, text in COMMANDS.items()
}
