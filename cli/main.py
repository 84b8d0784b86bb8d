"""The ``autopilot`` command: start, watch, steer and inspect service-mesh operators.

One Typer application; each command lives in a module of its own (``cli/status.py``,
``cli/commands.py``, ...) and is listed in :func:`table`, so this file reads as the table
of contents. A command's module is imported only when that command runs or shows its own
help: between them the modules bring the Temporal and Kubernetes clients, the dev cluster
and every workflow, most of a second of imports, while ``autopilot status`` needs only
Temporal and ``autopilot --help`` none of it. The top-level ``--help`` reads the one-line
summaries from the modules' source instead (:func:`summary_in_source`), remembered between
runs while the files are unchanged (:mod:`cli.source_cache`).

Exit codes are documented in :class:`cli.errors.Exit` and ``docs/cli.md``; the console
script is :func:`main`, which ends the process through :func:`cli.errors.leave`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from cli.errors import CliError, Exit, documented, friendly, leave
from cli.source_cache import SourceCache

#: What may name an operator (``models.operator.OPERATOR_NAME_PATTERN``, kept import-free).
_OPERATOR_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def _epilog(*examples: str) -> str:
    return "Examples:\n\n" + "\n\n".join(f"  {e}" for e in examples)


@dataclass(frozen=True)
class Entry:
    """One line of the table of contents: a command and where it is defined.

    ``attribute`` is a command's callback or a ``typer.Typer`` (a group such as ``canary``);
    with ``key`` it is a dict of callbacks and the command is ``attribute[key]``.
    """

    name: str
    module: str
    attribute: str
    examples: tuple[str, ...] = ()
    key: str | None = None
    context_settings: dict[str, Any] | None = None


#: The human commands of ``cli/commands.py``: one callback each in ``CALLBACKS``, named
#: and summarized by the literal dict ``COMMANDS`` (read from the source, see below).
_HUMAN = "cli.commands"
_HUMAN_SUMMARIES = "COMMANDS"


def _human_examples(name: str) -> tuple[str, ...]:
    return (
        f"autopilot {name} canary/shop/web --reason 'checked the dashboards'",
        f"autopilot {name} -n shop web --as release-bot",
    )


@cache
def source_cache() -> SourceCache:
    """What was read from the commands' source in earlier runs (:mod:`cli.source_cache`)."""
    return SourceCache()


def table() -> list[Entry]:
    """Every command, in the order ``--help`` lists them."""
    humans = source_cache().get(
        _HUMAN, _HUMAN_SUMMARIES, lambda: literal_in_source(_HUMAN, _HUMAN_SUMMARIES)
    )
    source_cache().save()
    if not isinstance(humans, dict):  # not a literal any more: import to know the names
        humans = getattr(importlib.import_module(_HUMAN), _HUMAN_SUMMARIES)
    return [
        Entry(
            "list",
            "cli.listing",
            "list_command",
            (
                "autopilot list --operator canary --state Progressing -n shop",
                "autopilot list --all -o json",
            ),
        ),
        Entry(
            "status",
            "cli.status",
            "status_command",
            ("autopilot status canary/shop/web", "autopilot status -n shop web -o json"),
        ),
        Entry(
            "watch",
            "cli.status",
            "watch_command",
            ("autopilot watch -n shop web && echo promoted",),
        ),
        *(Entry(name, _HUMAN, "CALLBACKS", _human_examples(name), key=name) for name in humans),
        Entry(
            "describe",
            "cli.describe",
            "describe_command",
            ("autopilot describe canary", "autopilot describe canary --mermaid > canary.mmd"),
        ),
        Entry(
            "worker",
            "cli.main",
            "worker_command",
            (
                "autopilot worker                      # embedded Temporal when none is configured",
                "TEMPORAL_ADDRESS=127.0.0.1:7233 autopilot worker",
                "autopilot worker -- --help            # the worker's own options",
            ),
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        ),
        Entry(
            "lint",
            "cli.lint",
            "lint_command",
            (
                "autopilot lint deploy/canaries/*.yaml",
                "kustomize build overlays/prod | autopilot lint -",
            ),
        ),
        Entry("demo", "cli.demo", "demo", ("autopilot demo", "autopilot demo --keep")),
        Entry("canary", "cli.canary", "canary_app"),
        Entry("new", "cli.new", "new_app"),
        Entry("dev", "cli.dev", "dev_app"),
    ]


@cache
def _source_tree(module: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    try:
        return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None


def _assigned(tree: ast.Module, name: str) -> ast.expr | None:
    """The value a module assigns to ``name`` at its top level, if it does."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            return node.value
    return None


def literal_in_source(module: str, name: str) -> object:
    """The literal ``module`` assigns to ``name``, read without importing it (or ``None``)."""
    tree = _source_tree(module)
    value = _assigned(tree, name) if tree is not None else None
    if value is None:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError):
        return None


def summary_in_source(entry: Entry) -> str | None:
    """What ``--help`` lists for ``entry``, read from its module's source without importing.

    The callback's docstring, the ``help=`` of a ``typer.Typer(...)``, or the human
    command's line in ``COMMANDS``. ``None`` when the source says it otherwise; the command
    is then imported to ask it (slower, same text).
    """
    if entry.key is not None:
        humans = literal_in_source(entry.module, _HUMAN_SUMMARIES)
        found = humans.get(entry.key) if isinstance(humans, dict) else None
        return found if isinstance(found, str) else None
    tree = _source_tree(entry.module)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry.attribute:
            return ast.get_docstring(node)
    value = _assigned(tree, entry.attribute)
    if isinstance(value, ast.Call):
        for keyword in value.keywords:
            if keyword.arg == "help":
                try:
                    text = ast.literal_eval(keyword.value)
                except (ValueError, TypeError):
                    return None
                return text if isinstance(text, str) else None
    return None


def load(entry: Entry) -> TyperCommand | TyperGroup:
    """Import ``entry``'s module and build its command as Typer would have."""
    found: Any = getattr(importlib.import_module(entry.module), entry.attribute)
    if entry.key is not None:
        found = found[entry.key]
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(found)
        group.name = entry.name
        return group
    single = typer.Typer(add_completion=False, rich_markup_mode="rich")
    single.command(
        entry.name,
        epilog=_epilog(*entry.examples) if entry.examples else None,
        context_settings=entry.context_settings,
    )(found)
    command = typer.main.get_command(single)
    assert isinstance(command, TyperCommand)
    return command


class LazyCommand(TyperCommand):
    """Stands in for a command until it is used: then its module is imported.

    Listing it (``--help``, completion of names) needs only its name and summary; parsing
    its arguments (running it, its own ``--help``, completing its options) builds the real
    command and hands over, so what runs is exactly the command the module defines.
    """

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry.name, rich_markup_mode="rich")
        self.entry = entry
        self._real: TyperCommand | TyperGroup | None = None

    def real(self) -> TyperCommand | TyperGroup:
        if self._real is None:
            self._real = load(self.entry)
        return self._real

    def describe(self) -> None:
        """Set the summary ``--help`` lists (read from the source, or from the command)."""
        if self.help is None:
            entry = self.entry
            name = entry.attribute if entry.key is None else f"{entry.attribute}[{entry.key}]"
            found = source_cache().get(entry.module, name, lambda: summary_in_source(entry))
            self.help = found if isinstance(found, str) else self.real().help

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return self.real().make_context(info_name, args, parent=parent, **extra)


class AutopilotGroup(TyperGroup):
    """The top-level group: the commands of :func:`table`, each a :class:`LazyCommand`."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands.update((entry.name, LazyCommand(entry)) for entry in table())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None and _OPERATOR_NAME.fullmatch(cmd_name):
            # Not a command of the table: an operator's name (``autopilot ticket close ...``)?
            from cli.operators import operator_group

            found = operator_group(cmd_name)
            if found is not None:
                self.commands[cmd_name] = found
        return found

    def list_commands(self, ctx: Any) -> list[str]:
        # Only listing needs the summaries; running one command never reads them.
        for command in self.commands.values():
            if isinstance(command, LazyCommand):
                command.describe()
        source_cache().save()
        return super().list_commands(ctx)


app = typer.Typer(
    name="autopilot",
    cls=AutopilotGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    help="Autopilot: adaptive service-mesh operators for Kubernetes and Istio, as durable "
    "Temporal workflows.",
    epilog="Examples:\n\n"
    "  autopilot canary start podinfo -n test -f deploy/examples/canary.yaml\n\n"
    "  autopilot watch -n test podinfo\n\n"
    "  autopilot approve canary/test/podinfo --reason 'dashboards look fine'\n\n"
    "Every operator's commands: autopilot OPERATOR COMMAND TARGET (autopilot quarantine "
    "release shop/payments; see autopilot OPERATOR --help).\n\n"
    "Exit codes: 0 ok, 1 refused or failed, 2 invalid input, 3 waiting, 4 unknown target, "
    "5 Temporal unreachable, 6 Kubernetes unreachable.",
)


@app.callback()
def _autopilot() -> None:
    """No options of its own; having a callback makes ``autopilot`` a group of commands."""


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


def run(args: list[str] | None = None, prog_name: str = "autopilot") -> Exit:
    """Run one ``autopilot`` command line to its end; the documented exit code it ends with.

    ``prog_name`` is what usage lines and help call the command (``kubectl autopilot`` when
    run as the kubectl plugin, :mod:`cli.plugin`).
    """
    try:
        app(args=args, prog_name=prog_name)
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
