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

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer
from pydantic import ValidationError

from cli.connection import (
    AddressOption,
    Endpoint,
    NamespaceOption,
    open_client,
    resolve,
    settings,
)
from cli.errors import CliError, Exit, error_console, friendly, run
from cli.output import Format, OutputOption, console, dump
from cli.targets import (
    DEFAULT_OPERATOR,
    KubeNamespaceOption,
    OperatorOption,
    TargetArgument,
    temporal_errors,
    unknown,
    workflow_id_of,
)
from cli.views import receipt_view
from models.errors import describe
from models.operator import APPLIED, CommandReceipt, CommandRequest
from service import commands

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


class Via(StrEnum):
    """Where a command goes: see ``--via``."""

    AUTO = "auto"
    KUBERNETES = "kubernetes"
    TEMPORAL = "temporal"


ViaOption = Annotated[
    Via,
    typer.Option(
        "--via",
        envvar="AUTOPILOT_COMMANDS_VIA",
        help="auto: as an Approval object when the cluster serves them (the API server "
        "authenticates you; RBAC decides), else straight to Temporal. kubernetes: only as an "
        "Approval. temporal: straight to Temporal, for local use (--as implies it).",
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


async def send_command(
    endpoint: Endpoint,
    workflow: str,
    request: CommandRequest,
    wait: float,
    update_id: str | None = None,
) -> CommandReceipt | None:
    """Send ``request`` to Temporal; the receipt, or ``None`` if accepted but not handled yet.

    Raises:
        CliError: Unknown workflow (4), finished workflow or refused command (1).
    """
    client = await open_client(endpoint, identity=request.by)
    try:
        with temporal_errors(endpoint, workflow):
            handle = await commands.running_handle(client, workflow)
            update = await commands.accept(
                handle, request, timeout=max(wait, commands.ACCEPT_TIMEOUT_S), update_id=update_id
            )
            if wait == 0:
                return None
            return await commands.outcome(update, request, wait)
    except commands.NoSuchWorkflow:
        raise unknown(workflow) from None
    except commands.WorkflowFinished as error:
        raise CliError(
            str(error), hint=f"'autopilot status {workflow}' shows how it ended"
        ) from None
    except commands.NotAnswered as error:
        raise CliError(
            str(error), hint="is a worker running? 'autopilot worker' starts one"
        ) from None
    except commands.CommandRefused as error:
        raise CliError(str(error)) from None


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
        via: ViaOption = Via.AUTO,
        wait: WaitOption = 120.0,
        output: OutputOption = Format.TABLE,
        address: AddressOption = None,
        temporal_namespace: NamespaceOption = None,
    ) -> None:
        if implied is not None and namespace is None and target.count("/") == 1:
            namespace, target = target.split("/")
        workflow = workflow_id_of(target, namespace, operator)
        endpoint = resolve(address, temporal_namespace)
        if as_ is not None and via is Via.KUBERNETES:
            raise CliError(
                "--as cannot be used with --via kubernetes: the API server says who you are",
                Exit.INVALID,
            )
        by = as_ if as_ is not None else settings().identity
        try:
            request = CommandRequest(command=name, by=by, reason=reason)
        except ValidationError as error:
            raise CliError(f"invalid command: {describe(error)}", Exit.INVALID) from None
        api = None
        if as_ is None and via is not Via.TEMPORAL:
            from cli import approvals  # the Kubernetes client loads only on this path

            api = approvals.kubernetes_api(via.value)  # type: ignore[arg-type]
        update_id = None
        if api is not None:
            of, kube_namespace, kube_name = workflow.split("/", 2)
            try:
                with api:
                    approval, receipt = approvals.give(
                        api,
                        operator=of,
                        namespace=kube_namespace,
                        target=kube_name,
                        command=name,
                        reason=reason,
                        wait=wait,
                        take_back=via is Via.AUTO,
                    )
                by = receipt.by if receipt is not None else f"Approval {kube_namespace}/{approval}"
            except approvals.NotPickedUp as taken_back:
                update_id = taken_back.update_id
                api = None
                error_console().print(
                    f"no watcher handled the Approval within {approvals.AUTO_PICKUP_TIMEOUT_S:g}s"
                    " (is the worker running with --no-watchers?); sent straight to Temporal "
                    "instead, recorded via temporal"
                )
        if api is None:
            receipt = run(send_command(endpoint, workflow, request, wait, update_id=update_id))
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
        f"{summary}\n\nWith a cluster that serves Approvals, the command is an Approval object: "
        "the API server authenticates you and RBAC decides (--via). Records who and why "
        "(--reason); a command the current state does not accept is refused with the "
        "workflow's message (exit 1)."
    )
    return friendly(command)


#: One Typer callback per command name.
CALLBACKS: dict[str, Callable[..., None]] = {
    name: make_command(name, text) for name, text in COMMANDS.items()
}
