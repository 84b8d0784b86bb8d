"""One functional wait for every test: poll until a condition holds, never assert on time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    probe: Callable[[], Any],
    accept: Callable[[Any], bool] = bool,
    *,
    attempts: int = 240,
    pause: float = 0.25,
    what: str = "condition",
) -> Any:
    """Call ``probe`` (sync or async) until ``accept`` says yes: a functional wait, not a
    timed assertion; gives up after ``attempts`` tries, naming ``what`` and the last value."""
    value: Any = None
    for _ in range(attempts):
        value = probe()
        if isinstance(value, Awaitable):
            value = await value
        if accept(value):
            return value
        await asyncio.sleep(pause)
    raise AssertionError(f"{what} never held; last value: {value!r}")
