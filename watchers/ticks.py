"""Run something at every interval boundary, the way every sampling watcher ticks.

Why boundaries: the evaluation instant is ``floor(now / interval) * interval``, so two
replicas, or a restarted one, evaluate the same instants and send the same event IDs, which
the workflows drop. One tick that fails is logged and the next boundary comes anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


async def at_interval_boundaries(
    interval_s: float,
    stop: asyncio.Event,
    tick: Callable[[datetime], Awaitable[None]],
    what: str,
) -> None:
    """Call ``tick(at)`` at each boundary of ``interval_s`` seconds until ``stop`` is set.

    Args:
        interval_s: the interval, in seconds.
        stop: set it to return (at once, even mid-wait).
        tick: what to do at the instant ``at`` (UTC).
        what: names the tick in the warning logged when it fails.
    """
    while not stop.is_set():
        at = (math.floor(time.time() / interval_s) + 1) * interval_s
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, at - time.time()))
            return
        except TimeoutError:
            pass
        try:
            await tick(datetime.fromtimestamp(at, UTC))
        except Exception:
            logger.warning("%s failed", what, exc_info=True)
