"""Calling the synchronous ``kubernetes`` client from async activities, and reading its errors.

Why threads: the official client blocks; activities are ``async`` so they run on the
worker's event loop without a thread-pool executor of their own, and each blocking call
goes through :func:`to_thread`.

Throttling that outlasts the client's own retries (:mod:`service.http_retry`) leaves here
as :data:`THROTTLED` (``KubernetesThrottled``) with ``next_retry_delay`` set from the
API server's ``Retry-After``: Temporal then waits that long before the next attempt instead
of retrying at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.kube.client import api_client
from service.http_retry import KUBE, THROTTLED, retry_after_s

#: An object as the API server sends it: a JSON mapping.
Json = dict[str, Any]

#: The error type of an activity attempt the API server kept throttling.
KUBERNETES_THROTTLED = "KubernetesThrottled"


async def to_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one blocking client call in a thread (the client's own types are loose).

    Raises:
        ApplicationError: ``KubernetesThrottled`` when the API server still answers 429
            after the client's retries; its ``next_retry_delay`` is the ``Retry-After``.
    """
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ApiException as error:
        if error.status == THROTTLED:
            raise throttled(error) from error
        raise


def throttled(error: ApiException) -> ApplicationError:
    """The activity error for a 429 the client's retries did not outlast."""
    wait = retry_after_s(error.headers)
    delay = timedelta(seconds=wait if wait is not None else KUBE.retry_after_cap_s)
    return ApplicationError(
        f"the API server is throttling: 429 {reason(error)}; retrying in "
        f"{delay.total_seconds():g}s",
        type=KUBERNETES_THROTTLED,
        next_retry_delay=delay,
    )


def to_dict(obj: Any) -> Json:
    """A client model (``V1Deployment``...) as the JSON mapping the API server sent."""
    if isinstance(obj, dict):
        return obj
    result: Json = api_client().sanitize_for_serialization(obj)
    return result


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an API error, or ``None`` for other errors."""
    return error.status if isinstance(error, ApiException) else None


def is_not_found(error: BaseException) -> bool:
    """404 from the API server."""
    return status_of(error) == 404


def is_conflict(error: BaseException) -> bool:
    """409: a stale resourceVersion or precondition, or an object that already exists."""
    return status_of(error) == 409


def reason(error: ApiException) -> str:
    """The API server's own explanation (its Status ``message``), else the HTTP reason."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


def exactly(obj: Json) -> client.V1DeleteOptions:
    """Delete options that only delete this very object, as it was read.

    A replaced object (other ``uid``) or a changed one (other ``resourceVersion``) makes
    the API server answer 409, so a delete never removes what the caller did not look at.
    """
    meta = obj["metadata"]
    preconditions = client.V1Preconditions(
        uid=meta["uid"], resource_version=meta["resourceVersion"]
    )
    return client.V1DeleteOptions(preconditions=preconditions)


def describe(obj: Json) -> str:
    """``Kind namespace/name`` of an object, for messages."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')}"
