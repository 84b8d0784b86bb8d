"""Every operator, by name, with the workflow class that runs it.

Operators register themselves with :func:`register` when their module is imported; the
registry imports every module of the ``workflows`` package (built-in operators and the
ones ``autopilot new operator`` scaffolds) plus any module named in
``AUTOPILOT_OPERATOR_MODULES`` (comma separated), so a new operator needs no edit here.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import Any

from workflows.engine import Operator, OperatorWorkflow

_WORKFLOWS: dict[str, type[OperatorWorkflow]] = {}
_SKIP = {"workflows.engine", "workflows.registry"}


def register(workflow_class: type[OperatorWorkflow]) -> type[OperatorWorkflow]:
    """Make an operator's workflow known to the worker and the CLI (a class decorator)."""
    _WORKFLOWS[workflow_class.operator.name] = workflow_class
    return workflow_class


def _discover() -> None:
    import workflows

    names = [
        f"workflows.{m.name}"
        for m in pkgutil.iter_modules(workflows.__path__)
        if f"workflows.{m.name}" not in _SKIP
    ]
    extra = os.environ.get("AUTOPILOT_OPERATOR_MODULES", "")
    names += [n.strip() for n in extra.split(",") if n.strip()]
    for name in names:
        importlib.import_module(name)


def workflows() -> dict[str, type[OperatorWorkflow]]:
    """Every registered operator workflow class, by operator name."""
    _discover()
    return dict(_WORKFLOWS)


def operators() -> dict[str, Operator[Any, Any]]:
    """Every registered operator definition, by name."""
    return {name: cls.operator for name, cls in workflows().items()}
