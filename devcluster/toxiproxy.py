"""Run Toxiproxy and drive its HTTP API: network faults between a client and a real server.

Toxiproxy (Shopify's, built from its Go module by :func:`devcluster.build.ensure_toxiproxy`)
is a TCP proxy: a *proxy* listens on one port and forwards to an upstream ``host:port``;
*toxics* added to it degrade the stream, each in one direction. The fault-injection tests
put one in front of the API server (TLS passes through untouched: the certificate is for
``127.0.0.1``, whatever the port) and one in front of Prometheus. The toxics used:

* ``latency``: every chunk is held ``latency`` ms (plus up to ``jitter`` ms);
* ``bandwidth``: at most ``rate`` KB/s;
* ``timeout``: nothing passes, and the connection is closed after ``timeout`` ms (0: never);
* ``reset_peer``: the connection is reset (TCP RST) after ``timeout`` ms.

Only the process :func:`start_toxiproxy` started is ever stopped (by its PID, see
:class:`~devcluster.process.ManagedProcess`).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.build import ensure_toxiproxy
from devcluster.process import ManagedProcess, free_port, http_ok, spawn, wait_until_ready

#: Seconds to wait for Toxiproxy's API to answer.
STARTUP_TIMEOUT = 20.0
#: Direction of a toxic: ``downstream`` is the server's answer, ``upstream`` the request.
DOWNSTREAM = "downstream"
UPSTREAM = "upstream"


class ToxiproxyError(RuntimeError):
    """Toxiproxy's API refused a request; the message holds its answer."""


@dataclass(frozen=True)
class Proxy:
    """One proxy: clients connect to ``listen``, Toxiproxy connects to ``upstream``."""

    name: str
    listen: str
    upstream: str

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return int(self.listen.rsplit(":", 1)[1])


@dataclass
class Toxiproxy:
    """A running Toxiproxy server and its API.

    Attributes:
        process: the server process (stop it with :meth:`stop`).
        api_port: where its HTTP API listens on 127.0.0.1.
    """

    process: ManagedProcess
    api_port: int

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.api_port}"

    def version(self) -> str:
        """The server's version (``GET /version``)."""
        answer = self._call("GET", "/version")
        return str(answer.get("version", answer)) if isinstance(answer, dict) else str(answer)

    def create_proxy(self, name: str, upstream: str, listen_port: int | None = None) -> Proxy:
        """Create (or replace) a proxy from ``127.0.0.1:<listen_port>`` to ``upstream``."""
        listen = f"127.0.0.1:{listen_port or free_port()}"
        with contextlib.suppress(ToxiproxyError):
            self._call("DELETE", f"/proxies/{name}")
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )
        return Proxy(name, listen, upstream)

    def add_toxic(
        self,
        proxy: str,
        kind: str,
        attributes: Mapping[str, int | float],
        *,
        stream: str = DOWNSTREAM,
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic (``latency``, ``bandwidth``, ``timeout``, ``reset_peer``...) to ``proxy``.

        Returns:
            The toxic's name (``<kind>_<stream>`` unless given), for :meth:`remove_toxic`.
        """
        toxic = name or f"{kind}_{stream}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": toxic,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": dict(attributes),
            },
        )
        return toxic

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        """Remove one toxic; the proxy forwards cleanly again."""
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (``POST /reset``)."""
        self._call("POST", "/reset")

    def stop(self) -> None:
        """Stop the server this object started."""
        self.process.stop()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ToxiproxyError(f"{method} {path}: {error.code} {detail}") from error
        return json.loads(text) if text.strip() else None


def start_toxiproxy(state_dir: Path, *, api_port: int | None = None) -> Toxiproxy:
    """Build Toxiproxy if needed, start it on 127.0.0.1 and wait for its API.

    Args:
        state_dir: where its log goes (``logs/toxiproxy.log``).
        api_port: the API's port (a free one by default).

    Raises:
        StartupError: it exited or its API did not answer in time.
        BuildError: it could not be built.
    """
    binary = ensure_toxiproxy()
    port = api_port or free_port()
    argv = [str(binary), "-host", "127.0.0.1", "-port", str(port)]
    process = spawn("toxiproxy", argv, state_dir / "logs" / "toxiproxy.log")
    url = f"http://127.0.0.1:{port}/version"
    wait_until_ready(process, lambda: http_ok(url), timeout=STARTUP_TIMEOUT, what="toxiproxy")
    return Toxiproxy(process, port)
