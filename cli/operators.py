"""``autopilot <operator> <command> TARGET``: every command any operator declares.

An operator's commands are the :class:`~workflows.engine.Command` triggers of its
transitions (plus the engine's ``pause``/``resume``/``retry``). Each becomes a subcommand of
``autopilot <operator>``, with the command's ``doc`` as its help, built from the registry
when it is used, so an operator written outside this project (``AUTOPILOT_OPERATOR_MODULES``)
gets its CLI with no edit here. The short forms of the built-ins (``autopilot approve``,
``autopilot release``, ...) stay as they are.

Why lazy: the registry imports every operator's module (and Temporal's SDK with them), most
of a second; ``autopilot --help`` and the short forms never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import typer
from typer.core import TyperGroup

#: Help of an ``autopilot <operator>`` group that is not built in.
GROUP_HELP = "Commands of the {name} operator: {commands}."


@cache
def registered() -> dict[str, Any]:
    """Every operator definition, by name (built-ins and ``AUTOPILOT_OPERATOR_MODULES``)."""
    from service.settings import settings as load_settings
    from workflows.registry import operators

    return dict(operators(load_settings().worker.operator_modules))


def command_docs(operator: Any) -> dict[str, str]:
    """Each command the operator accepts, with the help text it gets."""
    from cli.commands import COMMANDS
    from workflows.engine import Command

    own: dict[str, str] = {}
    transition_docs: dict[str, str] = {}
    for transition in operator.transitions:
        trigger = transition.trigger
        if isinstance(trigger, Command):
            own.setdefault(trigger.name, "")
            own[trigger.name] = own[trigger.name] or trigger.doc
            transition_docs.setdefault(trigger.name, transition.doc)
    names = set(operator.commands()) | set(own)
    return {
        name: own.get(name)
        or COMMANDS.get(name)
        or _sentence(transition_docs.get(name, ""))
        or f"Send the {name!r} command."
        for name in sorted(names)
    }


def _sentence(text: str) -> str:
    """``lift it`` -> ``Lift it.``: a transition's note read as a command's help."""
    text = text.strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def operator_commands(name: str) -> dict[str, Callable[..., None]]:
    """The Typer callbacks of operator ``name``'s commands (empty if it is not registered)."""
    from cli.commands import make_command

    operator = registered().get(name)
    if operator is None:
        return {}
    return {
        command: make_command(command, doc, operator=name)
        for command, doc in command_docs(operator).items()
    }


def add_to(group: TyperGroup, name: str) -> TyperGroup:
    """Add operator ``name``'s commands to ``group`` (those it does not have already)."""
    commands = operator_commands(name)
    single = typer.Typer(add_completion=False, rich_markup_mode="rich")
    for command, callback in commands.items():
        if command not in group.commands:
            single.command(command)(callback)
    if commands:
        built = typer.main.get_group(single)
        for command_name, built_command in built.commands.items():
            group.commands.setdefault(command_name, built_command)
    return group


def operator_group(name: str) -> TyperGroup | None:
    """``autopilot <name>`` for a registered operator with no group of its own, else None."""
    commands = operator_commands(name)
    if not commands:
        return None
    group = TyperGroup(
        name=name,
        help=GROUP_HELP.format(name=name, commands=", ".join(commands)),
        no_args_is_help=True,
        rich_markup_mode="rich",
    )
    return add_to(group, name)


class OperatorGroup(TyperGroup):
    """A group of its own (``autopilot canary``) that also has its operator's commands.

    They are looked up only when a name is not one of the group's own commands, or when
    the group lists its commands (``--help``).
    """

    def _with_operator(self) -> None:
        if not getattr(self, "_operator_added", False):
            self._operator_added = True
            add_to(self, self.name or "")

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            self._with_operator()
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: Any) -> list[str]:
        self._with_operator()
        return super().list_commands(ctx)
