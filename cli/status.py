"""``autopilot status`` and ``autopilot watch``: one workflow, once or live.

``watch`` ends when the machine stops moving on its own, and says how through its exit
code, so a script or CI job can wait on a rollout:

* 0: succeeded (a final, successful state, e.g. the canary was promoted);
* 1: failed (a failed state, e.g. rolled back, or the workflow itself failed);
* 3: waiting (a settled state that needs a human or a new event).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text
from temporalio.client import Client

from cli.connection import AddressOption, Endpoint, NamespaceOption, open_client, resolve
from cli.errors import CliError, Exit, friendly, run
from cli.output import Format, OutputOption, console, dump
from cli.targets import (
    DEFAULT_OPERATOR,
    KubeNamespaceOption,
    OperatorOption,
    Snapshot,
    TargetArgument,
    snapshot,
    workflow_id_of,
)
from cli.views import outcome_text, status_view, step_line
from models.operator import TransitionRecord

#: ``watch`` exit code for each final outcome.
WATCH_EXIT = {"succeeded": Exit.OK, "failed": Exit.FAILED, "waiting": Exit.WAITING}

#: How long ``watch`` keeps trying while Temporal is unreachable (e.g. restarting).
UNREACHABLE_PATIENCE_S = 60.0


@friendly
def status_command(
    target: TargetArgument,
    namespace: KubeNamespaceOption = None,
    operator: OperatorOption = DEFAULT_OPERATOR,
    output: OutputOption = Format.TABLE,
    all_steps: Annotated[
        bool, typer.Option("--all-steps", help="Show every recorded step, not the last few.")
    ] = False,
    address: AddressOption = None,
    temporal_namespace: NamespaceOption = None,
) -> None:
    """Show where one operator instance is: state, weight, metrics, gate, steps, commands.

    Works for finished workflows too. TARGET is a workflow ID, or with -n a Deployment name.
    """
    workflow = workflow_id_of(target, namespace, operator)
    endpoint = resolve(address, temporal_namespace)

    async def body() -> Snapshot:
        client = await open_client(endpoint)
        return await snapshot(client, endpoint, workflow)

    found = run(body())
    if output == Format.TABLE:
        console().print(status_view(found, all_steps=all_steps))
    else:
        dump(found.as_dict(), output)


@friendly
def watch_command(
    target: TargetArgument,
    namespace: KubeNamespaceOption = None,
    operator: OperatorOption = DEFAULT_OPERATOR,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between looks.")
    ] = 1.0,
    address: AddressOption = None,
    temporal_namespace: NamespaceOption = None,
) -> None:
    """Follow one operator instance live until it stops moving on its own.

    Exit codes: 0 succeeded, 1 failed (e.g. rolled back), 3 waiting (settled, e.g. for a
    human), 4 unknown target, 5 Temporal unreachable. On a terminal the status redraws in
    place; elsewhere (CI logs) each step is printed as a line.
    """
    workflow = workflow_id_of(target, namespace, operator)
    endpoint = resolve(address, temporal_namespace)
    final = run(_watch(endpoint, workflow, interval, console()))
    raise typer.Exit(int(WATCH_EXIT.get(final.outcome, Exit.FAILED)))


async def _watch(endpoint: Endpoint, workflow: str, interval: float, out: Console) -> Snapshot:
    client = await open_client(endpoint)
    found = await snapshot(client, endpoint, workflow)
    if out.is_terminal:
        with Live(status_view(found), console=out, refresh_per_second=4) as live:
            while found.outcome == "running":
                await asyncio.sleep(interval)
                found = await _look_again(client, endpoint, workflow)
                live.update(status_view(found))
    else:
        out.print(Text.assemble(f"watching {workflow}: ", (found.status.state, "bold")))
        for record in _moves(found.status.transitions)[-5:]:
            out.print(step_line(record, workflow))
        printed = {r.event_id for r in found.status.transitions}
        weight = found.status.data.get("canary_weight")
        while found.outcome == "running":
            await asyncio.sleep(interval)
            found = await _look_again(client, endpoint, workflow)
            # By event ID: the engine keeps a bounded list, so positions shift.
            new = [r for r in found.status.transitions if r.event_id not in printed]
            for record in _moves(new):
                out.print(step_line(record, workflow))
            printed.update(r.event_id for r in new)
            now_weight = found.status.data.get("canary_weight")
            if now_weight != weight and now_weight is not None:
                out.print(f"  weight {now_weight}%")
                weight = now_weight
    out.print(
        Text.assemble(
            f"{workflow} stopped in state ",
            (found.status.state, "bold"),
            ": ",
            outcome_text(found.outcome),
        )
    )
    reason = found.status.data.get("failure") or found.status.error or found.failure
    if found.outcome == "failed" and reason:
        out.print(Text(f"  {reason}", style="red"))
    if found.outcome == "waiting" and found.status.accepted_commands:
        out.print(f"  accepts: {', '.join(found.status.accepted_commands)}")
    out.print(f"  {found.url}", style="dim")
    return found


def _moves(records: list[TransitionRecord]) -> list[TransitionRecord]:
    """Transitions that changed the state (a log line each); internal ones are left out."""
    return [r for r in records if r.target != r.source]


async def _look_again(client: Client, endpoint: Endpoint, workflow: str) -> Snapshot:
    """The next snapshot; rides out a Temporal restart for a while before giving up."""
    waited = 0.0
    while True:
        try:
            return await snapshot(client, endpoint, workflow)
        except CliError as error:
            if error.code != Exit.NO_TEMPORAL or waited >= UNREACHABLE_PATIENCE_S:
                raise
        await asyncio.sleep(2.0)
        waited += 2.0
