"""A webhook receiver for tests: records what it gets, answers what the test says.

It plays the part of a user's endpoint (Flagger's load tester, a Slack bridge); it is not
a fake of any system Autopilot depends on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class HookReceiver:
    """Status per path (default 200), optional delay, and every request body received."""

    base_url: str = ""
    status: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The ``Idempotency-Key`` of each request, in order ("" when it had none).
    keys: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The full URL of a path on this receiver."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """Bodies received on one path, in order."""
        return [body for p, body in self.received if p == f"/{path.lstrip('/')}"]

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        await asyncio.sleep(self.delay.get(request.path, 0))
        code = self.status.get(request.path, 200)
        return web.Response(status=code, text="" if code < 300 else f"said {code}")


@asynccontextmanager
async def hook_receiver() -> AsyncIterator[HookReceiver]:
    """Serve a :class:`HookReceiver` on a free loopback port."""
    receiver = HookReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
