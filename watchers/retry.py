"""How long a watcher waits before it tries a failed step again: doubling, capped.

One rule for every watcher (a decision of the Kubernetes watcher, a delivery of the senses'
runtime, the whole set of watchers starting again), so none retries in a tight loop and none
waits longer than :data:`MAX_RETRY_S`.
"""

from __future__ import annotations

#: Longest pause before a failed step is tried again, in seconds.
MAX_RETRY_S = 30.0


def retry_delay(attempt: int) -> float:
    """The pause after the ``attempt``-th failure in a row (1: 0.5 s, then 1, 2, 4 ... 30 s)."""
    return min(MAX_RETRY_S, 0.5 * 2 ** min(max(attempt, 1) - 1, 6))
