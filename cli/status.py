"""``autopilot status`` and ``autopilot watch``: one workflow, once or live.

``watch`` ends when the machine stops moving on its own, and says how through its exit
code, so a script or CI job can wait on a rollout:

* 0: succeeded (a final, successful state, e.g. the canary was promoted);
* 1: failed (a failed state, e.g. rolled back, or the workflow itself failed);
* 3: waiting (a settled state that needs a human or a new event).

While it runs, ``watch`` looks every ``--interval`` and tells what changed since the last
look (``cli/happenings.py``): steps, analyses, failed checks, weights, gates, messages.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text
from temporalio.client import Client

from cli.connection import AddressOption, Endpoint, NamespaceOption, open_client, resolve
from cli.errors import CliError, Exit, friendly, run
from cli.output import Format, OutputOption, console, dump, dump_line
from cli.targets import (
    DEFAULT_OPERATOR,
    KubeNamespaceOption,
    OperatorOption,
    Snapshot,
    TargetArgument,
    snapshot,
    workflow_id_of,
)
from cli.views import outcome_text, status_view

if TYPE_CHECKING:  # only watch needs them (and cli.happenings brings every canary model)
    from rich.live import Live

    from cli.happenings import Happening

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
    if output.human:
        console(output).print(status_view(found, all_steps=all_steps))
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
    output: OutputOption = Format.TABLE,
    address: AddressOption = None,
    temporal_namespace: NamespaceOption = None,
) -> None:
    """Follow one operator instance live until it stops moving on its own.

    A line for every step, analysis (metric values against thresholds),
    failed check or hook, weight change and gate, as it happens. On a
    terminal the status is redrawn below them; with -o plain or in a pipe,
    lines only; with -o json, one JSON object per line.

    Exit codes: 0 succeeded, 1 failed (e.g. rolled back), 3 waiting
    (settled, e.g. for a human), 4 unknown target, 5 Temporal unreachable.
    """
    workflow = workflow_id_of(target, namespace, operator)
    endpoint = resolve(address, temporal_namespace)
    final = run(_watch(endpoint, workflow, interval, _Teller(workflow, output)))
    raise typer.Exit(int(WATCH_EXIT.get(final.outcome, Exit.FAILED)))


class _Teller:
    """Where ``watch`` tells what happens: log lines, a live view, or JSON/YAML records."""

    def __init__(self, workflow: str, fmt: Format) -> None:
        self.workflow = workflow
        self.fmt = fmt
        self.out = console(fmt) if fmt.human else None
        self.live: Live | None = None

    def start(self, found: Snapshot) -> None:
        """The first look: which workflow, where it is, its last moves and message."""
        status = found.status
        if self.out is None:
            text = f"watching {self.workflow}: {status.state}"
            record = {"at": datetime.now(UTC).isoformat(), "workflow": self.workflow}
            dump_line({**record, "kind": "watching", "text": text, "state": status.state}, self.fmt)
        else:
            if self.out.is_terminal:  # a plain console never is
                from rich.live import Live

                self.live = Live(status_view(found), console=self.out, refresh_per_second=4)
                self.live.start()
            self.out.print(Text.assemble(f"watching {self.workflow}: ", (status.state, "bold")))
        from cli.happenings import opening

        self.tell(opening(status))

    def tell(self, happenings: list[Happening]) -> None:
        """Print each happening (above the live view, on a terminal)."""
        from cli.happenings import line

        for happening in happenings:
            if self.out is None:
                dump_line(happening.as_dict(self.workflow), self.fmt)
            else:
                self.out.print(line(happening, self.workflow))

    def redraw(self, found: Snapshot) -> None:
        """The live view shows this look (a no-op without a terminal)."""
        if self.live is not None:
            self.live.update(status_view(found))

    def close(self) -> None:
        """Stop redrawing (also when watching ends with an error)."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def stop(self, found: Snapshot) -> None:
        """The last look: how the machine stopped, why, what it accepts, its UI link."""
        self.close()
        status = found.status
        reason = status.data.get("failure") or status.error or found.failure
        reason = reason if found.outcome == "failed" and reason else None
        accepts = status.accepted_commands if found.outcome == "waiting" else []
        if self.out is None:
            dump_line(
                {
                    "at": datetime.now(UTC).isoformat(),
                    "workflow": self.workflow,
                    "kind": "stopped",
                    "text": f"{self.workflow} stopped in state {status.state}: {found.outcome}",
                    "state": status.state,
                    "outcome": found.outcome,
                    "reason": reason,
                    "accepts": accepts,
                    "ui_url": found.url,
                },
                self.fmt,
            )
            return
        self.out.print(
            Text.assemble(
                f"{self.workflow} stopped in state ",
                (status.state, "bold"),
                ": ",
                outcome_text(found.outcome),
            )
        )
        if reason:
            self.out.print(Text(f"  {reason}", style="red"))
        if accepts:
            self.out.print(f"  accepts: {', '.join(accepts)}")
        self.out.print(Text(f"  {found.url}", style="dim"))


async def _watch(endpoint: Endpoint, workflow: str, interval: float, teller: _Teller) -> Snapshot:
    client = await open_client(endpoint)
    found = await snapshot(client, endpoint, workflow)
    teller.start(found)
    # The last status a worker answered with: what the next look is compared with (a look
    # shown from Temporal's records alone has no data or steps to compare).
    answered = found.status if found.note is None else None
    try:
        while found.outcome == "running" or _finishing(found):
            await asyncio.sleep(interval)
            found = await _look_again(client, endpoint, workflow)
            teller.redraw(found)
            if found.note is not None:
                continue
            if answered is not None:
                # By event ID: the engine keeps a bounded list, so positions shift.
                seen = {r.event_id for r in answered.transitions}
                new = [r for r in found.status.transitions if r.event_id not in seen]
                from cli.happenings import between

                teller.tell(between(answered, found.status, new, datetime.now(UTC)))
            answered = found.status
    finally:
        teller.close()
    teller.stop(found)
    return found


def _finishing(found: Snapshot) -> bool:
    """In a final state whose work still runs (e.g. post-rollout hooks): wait for the end.

    Why: ``watch && autopilot canary start --image ...`` would otherwise find the workflow
    still running and send it the new revision instead of starting the next rollout.
    """
    return found.status.final and found.running and found.note is None


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
