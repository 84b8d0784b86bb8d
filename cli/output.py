"""Where and how commands print: Rich tables for people, JSON or YAML for scripts.

Consoles are made per command, not at import, so the terminal width (``COLUMNS``) and
redirections in effect when the command runs are the ones used.
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
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Format,
    typer.Option("--output", "-o", help="table for people; json or yaml for scripts."),
]


def console() -> Console:
    """The console for a command's normal output (stdout)."""
    return Console(highlight=False)


def dump(data: Any, fmt: Format) -> None:
    """Print ``data`` as JSON or YAML on stdout, nothing else."""
    if fmt == Format.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        import yaml  # here: only -o yaml needs it

        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
