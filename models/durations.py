"""Durations as Go, Kubernetes and Flagger users write them: ``"30s"``, ``"1m"``, ``"1m30s"``.

Shared by every operator's spec so ``escalateAfter: 4h`` and ``interval: 1m`` read the same.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "µs": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
#: The pattern a duration string must match (also in the CRD schema).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
#: The longest duration string accepted (``1h30m`` is 5; nobody writes 64).
MAX_DURATION_LENGTH = 64


def parse_duration(value: object) -> timedelta:
    """Parse ``"1m30s"`` (Go syntax), a number of seconds, or a timedelta.

    Raises:
        ValueError: not a duration; the message shows the expected form.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except OverflowError:
            raise ValueError(f"{value!r} seconds is longer than any duration can be") from None
    if isinstance(value, str) and len(value) > MAX_DURATION_LENGTH:
        raise ValueError(f"a duration may be at most {MAX_DURATION_LENGTH} characters")
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value.strip()):
        raise ValueError(f"{value!r} is not a duration; write it like '30s', '1m' or '1m30s'")
    total = timedelta()
    try:
        for number, unit in _PART.findall(value.strip()):
            total += float(number) * _UNITS[unit]
    except OverflowError:
        raise ValueError(f"{value!r} is longer than any duration can be") from None
    return total


def format_duration(value: timedelta) -> str:
    """Write a duration in Go's short form: ``1h2m3s``, ``1m``, ``30s``, ``500ms``."""
    micros = round(value.total_seconds() * 1_000_000)
    if micros <= 0:
        return "0s"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, rest = divmod(rest, 1_000_000)
    if not (hours or minutes or seconds):
        return f"{rest // 1000}ms" if rest % 1000 == 0 else f"{rest}us"
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if seconds or rest:
        fraction = f".{rest:06d}".rstrip("0") if rest else ""
        text += f"{seconds}{fraction}s"
    return text


#: A duration field: reads ``"30s"``, writes ``"30s"``.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": MAX_DURATION_LENGTH}
    ),
]
