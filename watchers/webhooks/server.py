"""Runs the webhook application on a TCP port beside the worker.

Why a runner class: ``worker_main`` needs to start the server, learn the port it got
(``port=0`` in tests), and stop it cleanly on shutdown; :func:`serve_webhooks` wraps that
into one coroutine that serves until it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from service.settings import WebhookSettings
from watchers.delivery import Delivery
from watchers.webhooks.app import create_app

logger = logging.getLogger(__name__)

#: Options of aiohttp's request handler. No automatic decompression: bodies must arrive as
#: signed (see ``body.py``), and a broken gzip stream must not reach a decompressor.
HANDLER_OPTIONS: dict[str, Any] = {"auto_decompress": False}


class WebhookServer:
    """The webhook application bound to ``settings.host``:``settings.port``.

    Use as ``async with WebhookServer(settings, delivery) as server: ...``; ``server.url``
    is then the base URL, with the real port when ``settings.port`` is 0.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        delivery: Delivery,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, delivery, registry=registry)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the port and start answering."""
        runner = web.AppRunner(self.app, **HANDLER_OPTIONS)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.settings.host, self.settings.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("webhooks listening on %s", self.url)

    async def stop(self) -> None:
        """Stop answering and cancel deliveries still in flight."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings asked for 0)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the webhook server is not started")
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        """``http://host:port``, for clients and logs."""
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_webhooks(
    settings: WebhookSettings,
    delivery: Delivery,
    *,
    registry: CollectorRegistry | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Serve webhooks until cancelled, then stop cleanly.

    Args:
        settings: where to listen and how to authenticate and map requests.
        delivery: where accepted events go.
        registry: the Prometheus registry ``/metrics`` shows; the delivery's by default.
        started: set once the port is bound, for callers that wait on readiness.
    """
    async with WebhookServer(settings, delivery, registry=registry):
        if started is not None:
            started.set()
        await asyncio.Event().wait()
