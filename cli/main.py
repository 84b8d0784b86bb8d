"""Entry point of the ``autopilot`` command (minimal; the lead owns and extends it)."""

from __future__ import annotations

import typer

from cli.dev import dev_app

app = typer.Typer(
    name="autopilot", no_args_is_help=True, help="Autopilot: adaptive mesh operators."
)
app.add_typer(dev_app, name="dev")
