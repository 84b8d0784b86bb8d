"""``autopilot new operator NAME``: scaffold an operator that runs and tests as generated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cli.errors import CliError, Exit, friendly
from cli.output import console
from cli.scaffold import ScaffoldError, scaffold

new_app = typer.Typer(
    name="new",
    help="Create new things from templates (an operator).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@new_app.command(
    "operator",
    epilog="Example:\n\n  autopilot new operator door_lock\n\n  pytest tests/operators/door_lock",
)
@friendly
def operator_command(
    name: Annotated[str, typer.Argument(help="Operator name: a lowercase identifier.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="The project's root directory.", show_default=True)
    ] = Path("."),
) -> None:
    """Scaffold an operator: its models, machine, workers, tests and docs page.

    The operator registers itself (the worker and 'autopilot describe' find it) and its
    generated tests pass on the time-skipping server. An existing name is refused.
    """
    try:
        made = scaffold(directory, name)
    except ScaffoldError as error:
        raise CliError(str(error), Exit.INVALID) from None
    out = console()
    out.print(Text.assemble(("✓ ", "green"), "operator ", (name, "bold"), " created:"))
    for path in made.files:
        out.print(f"  {path}")
    test = next(p for p in made.files if p.name.startswith("test_"))
    steps = [
        (f"pytest {test.parent}", "its tests, on the time-skipping server"),
        (f"autopilot describe {name}", "its states and transitions"),
        (f"autopilot describe {name} --mermaid", "its diagram"),
        ("autopilot worker", "runs it with every other operator"),
    ]
    width = max(len(command) for command, _ in steps)
    out.print("next:")
    for command, why in steps:
        out.print(f"  {command.ljust(width)}  [dim]# {why}[/]")
