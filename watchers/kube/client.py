"""The Kubernetes API client of the watchers, and the one way they call it from asyncio.

Why threads: the official ``kubernetes`` client is synchronous. Watches hold a thread each
(see :mod:`watchers.kube.informer`); every other call goes through :class:`KubeCalls`, which
runs it in a worker thread and bounds how many are in flight, so 500 canaries never become
500 simultaneous requests (Flagger's degradation near 50-70 canaries was client throttling).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

from service import kube

T = TypeVar("T")


def api_client(kubeconfig: Path | None = None) -> client.ApiClient:
    """A new API client by the project's one precedence (:mod:`service.kube`).

    Args:
        kubeconfig: an explicit kubeconfig file (the watchers' own setting), which wins.

    Returns:
        A client with a connection pool large enough for the watches plus the calls.
    """
    return kube.api_client(kubeconfig=kubeconfig)


class KubeCalls:
    """Runs blocking client calls in threads, at most ``limit`` at once.

    Args:
        api: the API client every call uses.
        limit: calls in flight at once.
    """

    def __init__(self, api: client.ApiClient, limit: int = 8) -> None:
        self.api = api
        self._slots = asyncio.Semaphore(limit)
        self.calls = 0

    async def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` in a thread once a slot is free."""
        async with self._slots:
            self.calls += 1
            return await asyncio.to_thread(function, *args, **kwargs)
