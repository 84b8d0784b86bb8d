"""Where and how commands print: Rich tables for people, plain lines for logs, JSON or YAML
for scripts.

Consoles are made per command, not at import, so the terminal width (``COLUMNS``) and
redirections in effect when the command runs are the ones used.

Why a plain console: Rich lays a view out for a terminal of ``COLUMNS`` columns, 80 when
stdout is a pipe. A CI log or ``| grep`` then got wrapped links and squeezed table columns
(``ope…``). When stdout is not a terminal (or with ``-o plain``) the same views are drawn
without width limit, colour or escape codes: one logical line per line, every link whole.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console


class Format(StrEnum):
    """``-o`` values."""

    TABLE = "table"
    PLAIN = "plain"
    JSON = "json"
    YAML = "yaml"

    @property
    def human(self) -> bool:
        """Drawn for people (``table`` or ``plain``), not dumped as data."""
        return self in (Format.TABLE, Format.PLAIN)


OutputOption = Annotated[
    Format,
    typer.Option(
        "--output",
        "-o",
        help="table for people (plain when stdout is not a terminal); plain: no colour, "
        "no wrapping; json or yaml for scripts.",
    ),
]

#: Width of a plain console: no line is ever wrapped or a column shortened.
PLAIN_WIDTH = 1_000_000


def console(fmt: Format = Format.TABLE) -> Console:
    """The console for a command's normal output (stdout).

    On a terminal (or with ``FORCE_COLOR``) and ``-o table``: Rich, at the terminal's width.
    Otherwise plain: no colour, no escape codes, no wrapping (see the module docstring).
    """
    out = Console(highlight=False)
    if fmt == Format.PLAIN or not out.is_terminal:
        return plain_console()
    return out


def plain_console() -> Console:
    """A console that prints text as it is: unwrapped, uncoloured, not a terminal."""
    return Console(
        highlight=False,
        width=PLAIN_WIDTH,
        soft_wrap=True,
        no_color=True,
        color_system=None,
        force_terminal=False,
        force_interactive=False,
        emoji=False,
    )


def dump(data: Any, fmt: Format) -> None:
    """Print ``data`` as JSON or YAML on stdout, nothing else."""
    if fmt == Format.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        import yaml  # here: only -o yaml needs it

        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


def dump_line(data: Any, fmt: Format) -> None:
    """One record of a stream: a JSON line, or a YAML document (``watch -o json|yaml``)."""
    if fmt == Format.JSON:
        typer.echo(json.dumps(data, sort_keys=False, default=str))
    else:
        import yaml  # here: only -o yaml needs it

        typer.echo("---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
