"""``autopilot describe OPERATOR``: an operator's states and transitions, or its diagram.

Reads the definitions the worker runs (:func:`workflows.registry.operators`), so what is
described is what runs; no Temporal server is needed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cli.errors import CliError, Exit, friendly
from cli.operators import registered
from cli.output import console
from workflows.engine.diagram import engine_notes, mermaid, state_rows, transition_rows

_KIND_STYLE = {"initial": "cyan", "final": "green", "settled": "yellow", "failed": "red"}


@friendly
def describe_command(
    operator: Annotated[str, typer.Argument(help="Operator name, e.g. canary.")],
    as_mermaid: Annotated[
        bool, typer.Option("--mermaid", help="Print a Mermaid stateDiagram-v2 instead.")
    ] = False,
) -> None:
    """Show an operator's states (final / settled / failed, workers, timer) and transitions."""
    known = registered()
    if operator not in known:
        raise CliError(
            f"no operator {operator!r}",
            Exit.UNKNOWN_TARGET,
            hint=f"registered operators: {', '.join(sorted(known)) or 'none'}",
        )
    definition = known[operator]
    if as_mermaid:
        typer.echo(mermaid(definition), nl=False)
        return
    states = Table(title="states", title_justify="left", box=box.SIMPLE_HEAD)
    states.add_column("state", style="bold", no_wrap=True)
    states.add_column("kind")
    states.add_column("workers", overflow="fold")
    states.add_column("timer")
    states.add_column("doc", overflow="fold")
    for row in state_rows(definition):
        kinds = Text(" ").join(Text(k, style=_KIND_STYLE.get(k, "")) for k in row.kinds)
        states.add_row(row.name, kinds, "\n".join(row.workers), row.timer, Text(row.doc))
    transitions = Table(
        title="transitions (per state, tried in this order; * after a state's own)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    transitions.add_column("from", no_wrap=True)
    transitions.add_column("on", no_wrap=True)
    transitions.add_column("if", overflow="fold")
    transitions.add_column("to", no_wrap=True)
    transitions.add_column("does")
    for transition in transition_rows(definition):
        transitions.add_row(
            transition.source,
            Text(transition.trigger, style="magenta" if transition.trigger[:1] == "/" else ""),
            transition.guard,
            transition.target,
            transition.effect,
        )
    header = Text.assemble(("operator ", "dim"), (definition.name, "bold"))
    parts: list[Table | Text] = [header]
    if definition.description:
        parts.append(Text(definition.description))
    parts += [states, transitions]
    notes = [
        "from * = from any non-final state; to (stays) = the state is kept, only data changes",
        *engine_notes(definition),
        f"commands: {', '.join('/' + c for c in definition.commands())}",
    ]
    parts.append(Text("\n".join(f"• {n}" for n in notes), style="dim"))
    console().print(Group(*parts))
