"""Every built-in operator, by name, with the workflow class that runs it.

The worker registers these; the CLI reads their definitions for ``describe``. A
user-written operator adds itself with :func:`register` (``autopilot new operator``
generates that call).
"""

from __future__ import annotations

from typing import Any

from workflows.engine import Operator, OperatorWorkflow

_WORKFLOWS: dict[str, type[OperatorWorkflow]] = {}


def register(workflow_class: type[OperatorWorkflow]) -> type[OperatorWorkflow]:
    """Make an operator's workflow known to the worker and the CLI (usable as a decorator)."""
    _WORKFLOWS[workflow_class.operator.name] = workflow_class
    return workflow_class


def _load_builtins() -> None:
    import importlib

    for module in ("workflows.quarantine", "workflows.canary"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def workflows() -> dict[str, type[OperatorWorkflow]]:
    """Every registered operator workflow class, by operator name."""
    _load_builtins()
    return dict(_WORKFLOWS)


def operators() -> dict[str, Operator[Any, Any]]:
    """Every registered operator definition, by name."""
    return {name: cls.operator for name, cls in workflows().items()}
