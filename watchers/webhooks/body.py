"""Reads a request body without ever holding more than the configured limit.

Why not ``request.read()``: the limit must hold for a declared ``Content-Length`` (refused
before a byte is read) and for chunked bodies that declare nothing (refused as soon as
the running total passes the limit), and both must answer our JSON 413.

Bodies must not be content-encoded: no webhook sender compresses, a signature over
decompressed bytes would not be what the sender signed, and a decompressor is one more
thing a stranger could feed. ``Content-Encoding`` other than ``identity`` answers 415.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from watchers.webhooks.errors import FieldProblem, Rejection


def too_large(limit: int) -> Rejection:
    """The 413 for a body above ``limit`` bytes; the connection is closed after it."""
    return Rejection(
        413,
        "body_too_large",
        f"the body is larger than the limit of {limit} bytes",
        close=True,
    )


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """Read the whole body of ``request``, refusing it with 413 past ``limit`` bytes.

    Args:
        request: the incoming request.
        limit: the largest body accepted, in bytes.
        timeout_s: how long the whole body may take to arrive; a sender that trickles
            bytes (or stops half-way) must not hold a handler forever.

    Returns:
        The raw body, exactly as signed by the sender.

    Raises:
        Rejection: 413 if the declared or the actual length is above ``limit``, 415 if
            the body is content-encoded, 408 if it arrives too slowly, 400 if it breaks off.
    """
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Rejection(
            415,
            "unsupported_content_encoding",
            "request bodies must not be content-encoded",
            [FieldProblem("Content-Encoding", f"{encoding[:32]!r} is not accepted")],
            close=True,
        )
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    received = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_any():
                received += chunk
                if len(received) > limit:
                    raise too_large(limit)
    except TimeoutError:
        message = f"the body did not arrive within {timeout_s:g}s"
        raise Rejection(408, "body_timeout", message, close=True) from None
    except (RequestPayloadError, ConnectionError) as error:
        # A broken chunked encoding, or a sender that left half-way: nothing usable arrived.
        message = f"the body cannot be read: {error}"
        raise Rejection(400, "unreadable_body", message, close=True) from None
    return bytes(received)
