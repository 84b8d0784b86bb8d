"""Every activity heartbeats while it runs, so a crashed worker costs seconds, not a timeout.

Why an interceptor rather than a call in each activity: an activity scheduled just before a
worker dies is noticed by the server only when its heartbeat timeout passes; without
heartbeats, only when its whole start-to-close timeout does (61 s for a weight change, 5 min
for an analysis, measured in issue 15). Each activity would have to remember to heartbeat in
each of its waits; this beats for all of them, every third of the activity's heartbeat
timeout, from the worker's event loop, for as long as the activity's coroutine runs.

It proves the worker is alive, not that the activity makes progress: a hung call is still
ended by the start-to-close timeout. An activity that heartbeats itself (with details) keeps
doing so; the SDK throttles the two together.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

#: The shortest pause between two beats, whatever the heartbeat timeout.
MIN_INTERVAL_S = 0.2


class HeartbeatInterceptor(Interceptor):
    """Worker interceptor: heartbeats for every activity that has a heartbeat timeout."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout or not asyncio.iscoroutinefunction(input.fn):
            return await super().execute_activity(input)
        beats = asyncio.create_task(_beat(max(MIN_INTERVAL_S, timeout.total_seconds() / 3)))
        try:
            return await super().execute_activity(input)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats


async def _beat(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat()
