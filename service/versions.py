"""Temporal Worker Versioning for the worker: its version, and making it the current one.

Why: a new worker build must never break a running rollout. With a ``build_id`` the worker
polls as the version ``<deployment_name>.<build_id>`` of a Worker Deployment, and each
operator's workflow type says how its runs move between versions
(``@workflow.defn(versioning_behavior=...)``):

* **pinned** (the canary): a run finishes on the version it started on, activities
  included, so an upgrade never re-triggers or changes a rollout in flight; old versions keep
  serving until their rollouts drain;
* **auto-upgrade** (quarantine, the rollout-slots semaphore, and any type that does not say):
  runs move to the current version at their next task, so fixes reach them; changes to such
  machines keep the replay discipline (``workflow.patched`` and a replay test).

New runs start on the deployment's *current* version; the worker makes its own version
current once its pollers are registered, unless ``make_current`` is off (then the
``temporal worker deployment set-current-version`` command does it, after checks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import WorkerDeploymentConfig

from service.settings import WorkerSettings

log = logging.getLogger("autopilot.worker")

#: How long the worker tries to make its version current (its pollers must be seen first).
MAKE_CURRENT_TIMEOUT_S = 60.0


def deployment_config(settings: WorkerSettings) -> WorkerDeploymentConfig | None:
    """The worker's versioning: ``None`` without a ``build_id`` (an unversioned worker)."""
    if settings.build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.deployment_name, settings.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


def behaviour_of(workflow_class: type[Any]) -> str:
    """``pinned`` or ``auto-upgrade``: how runs of this workflow type move between versions."""
    definition = getattr(workflow_class, "__temporal_workflow_definition", None)
    behaviour = getattr(definition, "versioning_behavior", VersioningBehavior.UNSPECIFIED)
    return "pinned" if behaviour == VersioningBehavior.PINNED else "auto-upgrade"


def describe_versioning(settings: WorkerSettings, workflows: Sequence[type[Any]]) -> str:
    """One line for the worker's start-up: its version and each type's behaviour."""
    if settings.build_id is None:
        return "unversioned worker (set AUTOPILOT_BUILD_ID to use Worker Versioning)"
    groups: dict[str, list[str]] = {}
    for workflow_class in workflows:
        definition = getattr(workflow_class, "__temporal_workflow_definition", None)
        name = getattr(definition, "name", None) or workflow_class.__name__
        groups.setdefault(behaviour_of(workflow_class), []).append(name)
    kinds = "; ".join(
        f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(groups.items())
    )
    return f"worker version {settings.deployment_name}.{settings.build_id} ({kinds})"


async def make_current(
    client: Client, settings: WorkerSettings, *, timeout_s: float = MAKE_CURRENT_TIMEOUT_S
) -> bool:
    """Make this worker's version the current one of its deployment; whether it worked.

    The server knows a version only once one of its workers has polled, so this is tried
    again, with a short pause, until ``timeout_s``.
    """
    assert settings.build_id is not None
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=settings.deployment_name,
        build_id=settings.build_id,
        identity=client.identity,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return True
        except RPCError as error:
            if loop.time() >= deadline:
                log.warning(
                    "could not make %s.%s current: %s",
                    settings.deployment_name,
                    settings.build_id,
                    error.message,
                )
                return False
        await asyncio.sleep(0.5)
