"""Every operator, by name, with the workflow class that runs it.

Operators register themselves with :func:`register` when their module is imported; the
registry imports every module of the ``workflows`` package (built-in operators and the
ones ``autopilot new operator`` scaffolds) plus the modules it is given (the worker's
``operator_modules`` setting, ``AUTOPILOT_OPERATOR_MODULES``), so a new operator needs no
edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

from workflows.engine import Operator, OperatorWorkflow

_WORKFLOWS: dict[str, type[OperatorWorkflow]] = {}
_SKIP = {"workflows.engine", "workflows.registry"}


def register(workflow_class: type[OperatorWorkflow]) -> type[OperatorWorkflow]:
    """Make an operator's workflow known to the worker and the CLI (a class decorator)."""
    _WORKFLOWS[workflow_class.operator.name] = workflow_class
    return workflow_class


def _discover(extra: Sequence[str]) -> None:
    import workflows

    names = [
        f"workflows.{m.name}"
        for m in pkgutil.iter_modules(workflows.__path__)
        if f"workflows.{m.name}" not in _SKIP
    ]
    for name in [*names, *extra]:
        importlib.import_module(name)


def workflows(extra: Sequence[str] = ()) -> dict[str, type[OperatorWorkflow]]:
    """Every registered operator workflow class, by operator name.

    Args:
        extra: modules outside this package that hold more operators (imported first).
    """
    _discover(extra)
    return dict(_WORKFLOWS)


def operators(extra: Sequence[str] = ()) -> dict[str, Operator[Any, Any]]:
    """Every registered operator definition, by name."""
    return {name: cls.operator for name, cls in workflows(extra).items()}
