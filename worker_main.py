"""Run the Autopilot worker: every registered operator's workflow and activities.

``python worker_main.py`` (or ``autopilot worker``) with no configuration starts the
embedded Temporal dev server, persisted under the state directory, and prints the UI
address. Configuration comes from the environment (``AUTOPILOT_*``) or flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

#: Modules the workflow sandbox shares with the worker instead of re-importing per run:
#: pure data models with no side effects.
PASSTHROUGH_MODULES = ("pydantic", "pydantic_core", "annotated_types", "models", "yaml")


def make_worker(
    client: Client,
    task_queue: str,
    workflows: Sequence[type[Any]],
    activities: Sequence[Callable[..., Any]],
    **options: Any,
) -> Worker:
    """A worker for the given operator workflows and their activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(
                *PASSTHROUGH_MODULES
            )
        ),
        **options,
    )
