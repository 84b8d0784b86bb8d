"""The Kubernetes API client of the watchers, and the one way they call it from asyncio.

Why threads: the official ``kubernetes`` client is synchronous. Watches hold a thread each
(see :mod:`watchers.kube.informer`); every other call goes through :class:`KubeCalls`, which
runs it in a worker thread and bounds how many are in flight, so 500 canaries never become
500 simultaneous requests (Flagger's degradation near 50-70 canaries was client throttling).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config

T = TypeVar("T")


def api_client(kubeconfig: Path | None = None) -> client.ApiClient:
    """A new API client: ``kubeconfig``, else ``$KUBECONFIG``, else in-cluster, else ~/.kube.

    Args:
        kubeconfig: an explicit kubeconfig file.

    Returns:
        A client with a connection pool large enough for the watches plus the calls.
    """
    configuration = client.Configuration()
    path = kubeconfig or (Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None)
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(
            config_file=str(path) if path else None, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


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
