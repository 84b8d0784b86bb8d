"""The ``autopilot`` command: start, watch, steer and inspect service-mesh operators.

One Typer application; each command lives in a module of its own (``cli/status.py``,
``cli/commands.py``, ...) and is mounted here, so this file reads as the table of contents.
Exit codes are documented in :class:`cli.errors.Exit` and ``docs/cli.md``; the console
script is :func:`main`, which ends the process through :func:`cli.errors.leave`.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from cli.canary import canary_app
from cli.commands import CALLBACKS, COMMANDS
from cli.demo import demo
from cli.describe import describe_command
from cli.dev import dev_app
from cli.errors import CliError, Exit, documented, friendly, leave
from cli.listing import list_command
from cli.new import new_app
from cli.status import status_command, watch_command

app = typer.Typer(
    name="autopilot",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    help="Autopilot: adaptive service-mesh operators for Kubernetes and Istio, as durable "
    "Temporal workflows.",
    epilog="Examples:\n\n"
    "  autopilot canary start podinfo -n test -f deploy/examples/canary.yaml\n\n"
    "  autopilot watch -n test podinfo\n\n"
    "  autopilot approve canary/test/podinfo --reason 'dashboards look fine'\n\n"
    "Exit codes: 0 ok, 1 refused or failed, 2 invalid input, 3 waiting, 4 unknown target, "
    "5 Temporal unreachable, 6 Kubernetes unreachable.",
)

app.add_typer(canary_app, name="canary")


def _epilog(*examples: str) -> str:
    return "Examples:\n\n" + "\n\n".join(f"  {e}" for e in examples)


_LIST = (
    "autopilot list --operator canary --state Progressing -n shop",
    "autopilot list --all -o json",
)
_STATUS = ("autopilot status canary/shop/web", "autopilot status -n shop web -o json")
_WATCH = ("autopilot watch -n shop web && echo promoted",)
_DESCRIBE = ("autopilot describe canary", "autopilot describe canary --mermaid > canary.mmd")

app.command("list", epilog=_epilog(*_LIST))(list_command)
app.command("status", epilog=_epilog(*_STATUS))(status_command)
app.command("watch", epilog=_epilog(*_WATCH))(watch_command)
for _name in COMMANDS:
    _examples = (
        f"autopilot {_name} canary/shop/web --reason 'checked the dashboards'",
        f"autopilot {_name} -n shop web --as release-bot",
    )
    app.command(_name, epilog=_epilog(*_examples))(CALLBACKS[_name])
app.command("describe", epilog=_epilog(*_DESCRIBE))(describe_command)
app.add_typer(new_app, name="new")


@app.command(
    "worker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_epilog(
        "autopilot worker                      # embedded Temporal when none is configured",
        "TEMPORAL_ADDRESS=127.0.0.1:7233 autopilot worker",
        "autopilot worker -- --help            # the worker's own options",
    ),
)
@friendly
def worker_command(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None,
        typer.Argument(help="Passed to the worker (worker_main) as they are.", show_default=False),
    ] = None,
) -> None:
    """Run the Temporal worker for every registered operator (worker_main.py).

    Configured by AUTOPILOT_* environment variables or the worker's own options; with no
    Temporal address it starts the embedded dev server and prints the UI address.
    """
    import worker_main

    main = getattr(worker_main, "main", None)
    if main is None:
        raise CliError("this checkout's worker_main.py has no main()")
    code = main([*(args or []), *ctx.args])
    raise typer.Exit(int(code or 0))


app.add_typer(dev_app, name="dev")
app.command("demo", epilog=_epilog("autopilot demo", "autopilot demo --keep"))(demo)


def run(args: list[str] | None = None) -> Exit:
    """Run one ``autopilot`` command line to its end; the documented exit code it ends with."""
    try:
        app(args=args, prog_name="autopilot")
    except SystemExit as exiting:
        return documented(exiting.code)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except Exception as error:  # escaped friendly(), e.g. with AUTOPILOT_DEBUG=1: a traceback
        sys.excepthook(type(error), error, error.__traceback__)
        return Exit.FAILED
    return Exit.OK


def main() -> NoReturn:
    """The ``autopilot`` console script (and ``python -m cli``): run, then :func:`leave`."""
    leave(run())
