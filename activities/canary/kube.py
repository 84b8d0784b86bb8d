"""One Kubernetes client for every canary activity, and the few helpers they share.

Why threads: the official ``kubernetes`` client is synchronous; activities are ``async``
so they run on the worker's event loop without a thread-pool executor of their own, and
each blocking call goes through :func:`call` (``asyncio.to_thread``). The client is built
once per process from ``KUBECONFIG`` (or the in-cluster service account) and reused, so a
worker holds one connection pool however many canaries it drives.

What Autopilot writes on objects is named here once (:data:`MANAGED_BY` and friends) and
documented in ``docs/operators/canary.md``, so GitOps tools can be told to leave it alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.kube_client import api_client as api_client
from activities.kube_client import apps as apps
from activities.kube_client import core as core
from activities.kube_client import custom as custom

#: Field manager recorded for every write (visible in ``managedFields``).
FIELD_MANAGER = "autopilot-canary"
#: Annotation on every object the canary operator created or took over; value: owner.
MANAGED_BY = "autopilot.dev/managed-by"
#: Value of :data:`MANAGED_BY`.
MANAGED_BY_VALUE = "canary"
#: Annotation naming the workflow that drives the object.
WORKFLOW = "autopilot.dev/workflow"
#: Annotation on ``<name>-primary``: the revision (pod template hash) it runs.
REVISION = "autopilot.dev/revision"
#: Annotations on ``<name>-primary``: a revision that failed or was aborted, and why.
REJECTED_REVISION = "autopilot.dev/rejected-revision"
REJECTED_REASON = "autopilot.dev/rejected-reason"
#: Tells Argo CD not to report generated objects as out of sync or prune them.
ARGOCD_COMPARE = "argocd.argoproj.io/compare-options"
#: Standard label for objects an operator manages.
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_LABEL_VALUE = "autopilot"

#: Istio networking API used for VirtualServices and DestinationRules.
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1"


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one blocking client call in a thread (the client's own types are loose)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A client model (``V1Deployment``...) as the JSON mapping the API server sent."""
    if isinstance(obj, dict):
        return obj
    result: dict[str, Any] = api_client().sanitize_for_serialization(obj)
    return result


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an API error, or ``None`` for other errors."""
    return error.status if isinstance(error, ApiException) else None


def is_not_found(error: BaseException) -> bool:
    """404 from the API server."""
    return status_of(error) == 404


def is_conflict(error: BaseException) -> bool:
    """409: a stale resourceVersion (or an object that already exists)."""
    return status_of(error) == 409


def non_retryable(message: str) -> ApplicationError:
    """An error no retry can fix (the engine turns it into ``ActivityFailed`` at once)."""
    return ApplicationError(message, type="NonRetryable", non_retryable=True)


def managed_metadata(
    name: str, namespace: str, workflow_id: str, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Metadata for an object the canary operator generates."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**(labels or {}), MANAGED_LABEL: MANAGED_LABEL_VALUE},
        "annotations": {
            MANAGED_BY: MANAGED_BY_VALUE,
            WORKFLOW: workflow_id,
            ARGOCD_COMPARE: "IgnoreExtraneous",
        },
    }


def is_managed(obj: dict[str, Any]) -> bool:
    """Whether we created (or were allowed to take over) this object."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(MANAGED_BY) == MANAGED_BY_VALUE


MAX_CONFLICT_RETRIES = 10


async def update_with_retry(
    read: Callable[[], Awaitable[dict[str, Any]]],
    change: Callable[[dict[str, Any]], bool],
    write: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    live: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """Read-modify-write with optimistic concurrency.

    ``change`` mutates the object in place and says whether anything changed; ``write``
    sends it with its ``resourceVersion`` so a concurrent writer makes the API server answer
    409, and then we read again and re-apply the change to what is there now.

    Args:
        read: Fetch the live object.
        change: Mutate it; return False when it is already as wanted (no write).
        write: Replace it (must send ``metadata.resourceVersion``).
        live: An object read earlier, used for the first attempt.

    Returns:
        The object as stored, and how many 409 conflicts were retried.
    """
    conflicts = 0
    obj = live if live is not None else await read()
    while True:
        if not change(obj):
            return obj, conflicts
        try:
            return await write(obj), conflicts
        except ApiException as error:
            if not is_conflict(error) or conflicts >= MAX_CONFLICT_RETRIES:
                raise
            conflicts += 1
            obj = await read()
