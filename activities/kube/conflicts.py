"""Optimistic concurrency: look, decide, write; on 409 look again, a bounded number of times.

Every write that depends on what was read sends the ``resourceVersion`` it read (a replace)
or preconditions (a delete), so a concurrent writer makes the API server answer 409 instead
of one change silently undoing the other. The answer to a 409 is always the same: read the
object again and decide again on what is there now. :func:`retry_conflicts` does that for
any attempt; :func:`read_modify_write` and :func:`ensure` are its two common shapes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

from activities.kube.calls import Json, describe, is_conflict

T = TypeVar("T")

#: Conflicts retried within one activity attempt before it gives up (Temporal retries it).
MAX_CONFLICTS = 10
#: Backoff between conflicted attempts: none before the first retry (one concurrent writer
#: is the common case), then doubling from :data:`BACKOFF_S`, at most :data:`MAX_BACKOFF_S`.
BACKOFF_S = 0.02
MAX_BACKOFF_S = 0.5


def backoff(conflicts: int) -> float:
    """Seconds to wait before retrying after the ``conflicts``-th conflict (with jitter)."""
    if conflicts <= 1:
        return 0.0
    return min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (conflicts - 2)) * random.uniform(0.5, 1.0)


async def _retry(attempt: Callable[[], Awaitable[T]], what: Callable[[], str]) -> tuple[T, int]:
    conflicts = 0
    while True:
        try:
            return await attempt(), conflicts
        except ApiException as error:
            if not is_conflict(error):
                raise
            if conflicts >= MAX_CONFLICTS:
                raise RuntimeError(
                    f"{what()} kept changing ({conflicts + 1} conflicts); "
                    "giving up for this attempt"
                ) from error
            conflicts += 1
            await asyncio.sleep(backoff(conflicts))


async def retry_conflicts(attempt: Callable[[], Awaitable[T]], what: str) -> tuple[T, int]:
    """Run ``attempt`` again while it fails with 409, up to :data:`MAX_CONFLICTS` times.

    Args:
        attempt: reads what it needs and acts on it; must read afresh every time.
        what: the object, for the message when it keeps changing.

    Returns:
        What the last attempt returned, and how many conflicts were retried.
    """
    return await _retry(attempt, lambda: what)


async def read_modify_write(
    read: Callable[[], Awaitable[Json]],
    mutate: Callable[[Json], bool],
    write: Callable[[Json], Awaitable[Json]],
    live: Json | None = None,
) -> tuple[Json, int]:
    """Read-modify-write with optimistic concurrency.

    Args:
        read: fetch the live object.
        mutate: change it in place; return False when it is already as wanted (no write).
        write: replace it (must send ``metadata.resourceVersion``).
        live: an object read earlier, used for the first attempt.

    Returns:
        The object as stored, and how many 409 conflicts were retried.
    """
    pending = [live] if live is not None else []
    seen: list[Json] = []

    async def attempt() -> Json:
        obj = pending.pop() if pending else await read()
        seen[:] = [obj]
        return await write(obj) if mutate(obj) else obj

    return await _retry(attempt, lambda: describe(seen[0]) if seen else "object")


async def ensure(
    wanted: Json,
    read: Callable[[], Awaitable[Json | None]],
    create: Callable[[Json], Awaitable[object]],
    mutate: Callable[[Json], bool],
    write: Callable[[Json], Awaitable[object]],
) -> bool:
    """Create ``wanted``, or bring the live object to it with :func:`read_modify_write` rules.

    Args:
        wanted: the object as it should be.
        read: fetch the live object, ``None`` when there is none.
        create: create ``wanted`` (409 when someone else did meanwhile: look again).
        mutate: change the live object in place towards ``wanted``; False when it already is.
        write: replace the live object (must send ``metadata.resourceVersion``).

    Returns:
        Whether anything was written.
    """

    async def attempt() -> bool:
        live = await read()
        if live is None:
            await create(wanted)
            return True
        if not mutate(live):
            return False
        await write(live)
        return True

    changed, _ = await retry_conflicts(attempt, describe(wanted))
    return changed
