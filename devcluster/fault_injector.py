"""Test tooling: an HTTP reverse proxy that answers chosen requests with a chosen status.

Toxiproxy degrades TCP (latency, resets, timeouts, bandwidth) but cannot speak HTTP, so the
answers a controller must survive from the API server or Prometheus (409, 429 with
``Retry-After``, 500, 503) come from this proxy instead. It is for the fault-injection tests
only: nothing in the product imports it.

It listens on plain HTTP on 127.0.0.1 and forwards every request it does not fault to the
real server, over TLS with the given client certificate when the upstream is the API
server, so the product's client talks to it with a kubeconfig of its own
(:func:`plain_kubeconfig`). A fault is a :class:`Rule`: requests that match (method, a
part of the path) are answered with its status and headers, ``times`` times, then pass
again. Every request is recorded (:class:`Seen`: when, what, which status went back), so a
test measures the gaps between a client's attempts from the server's side.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3

#: Headers that belong to one hop and are not forwarded (RFC 9110, 7.6.1), plus the length
#: and encoding this proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


@dataclass
class Rule:
    """Answer matching requests with ``status`` instead of forwarding them.

    Attributes:
        status: the answer, e.g. 429.
        method: only this verb (any when ``None``).
        path: only paths containing this text (any when ``None``).
        times: how many matching requests get the fault; then they pass again.
        headers: headers of the answer, e.g. ``{"Retry-After": "1"}``.
        reason: the ``message`` of the Kubernetes ``Status`` sent as the body.
    """

    status: int
    method: str | None = None
    path: str | None = None
    times: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = "injected fault"

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is one this rule answers (while it has answers left)."""
        if self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path in path

    def body(self) -> bytes:
        """A Kubernetes ``Status`` object (Prometheus clients read only the status code)."""
        return json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": self.reason,
                "reason": _REASONS.get(self.status, "InternalError"),
                "code": self.status,
            }
        ).encode()


_REASONS = {
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and the status it sent back."""

    at: float
    method: str
    path: str
    status: int
    injected: bool


class FaultInjector:
    """A fault-injecting reverse proxy in a thread of the test process.

    Args:
        upstream: the real server, e.g. ``https://127.0.0.1:6443``.
        ca_file, cert_file, key_file: TLS material to reach an HTTPS upstream as a client.
    """

    def __init__(
        self,
        upstream: str,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {}
        if self.upstream.startswith("https://"):
            kwargs = {"ca_certs": ca_file, "cert_file": cert_file, "key_file": key_file}
        self._pool = urllib3.PoolManager(maxsize=16, **kwargs)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where clients send their requests."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultInjector:
        """Start serving (in a daemon thread)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the upstream connections."""
        self._server.shutdown()
        self._server.server_close()
        self._pool.clear()

    def add(self, rule: Rule) -> Rule:
        """Fault the requests ``rule`` matches, from now on."""
        with self._lock:
            self.rules.append(rule)
        return rule

    @contextlib.contextmanager
    def fault(self, rule: Rule) -> Iterator[Rule]:
        """``rule`` for the duration of a ``with`` block."""
        self.add(rule)
        try:
            yield rule
        finally:
            with self._lock:
                if rule in self.rules:
                    self.rules.remove(rule)

    def clear(self) -> None:
        """Forget every rule and every recorded request."""
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """The recorded requests with this verb and containing this path text, in order."""
        with self._lock:
            return [
                seen
                for seen in self.seen
                if (method is None or seen.method == method) and (path is None or path in seen.path)
            ]

    def _claim(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _record(self, method: str, path: str, status: int, injected: bool) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), method, path, status, injected))

    def _forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        answer = self._pool.request(
            method,
            f"{self.upstream}{path}",
            body=body,
            headers={k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP},
            retries=False,
            redirect=False,
            preload_content=True,
            decode_content=False,
            timeout=urllib3.Timeout(connect=5, read=60),
        )
        kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
        return answer.status, kept, answer.data


def _handler(injector: FaultInjector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the injector records requests in :attr:`FaultInjector.seen`."""

        def _handle(self) -> None:
            method, path = self.command, self.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            rule = injector._claim(method, path)
            if rule is not None:
                payload = rule.body()
                injector._record(method, path, rule.status, True)
                self.send_response(rule.status)
                for key, value in rule.headers.items():
                    self.send_header(key, value)
                self._send_body("application/json", payload)
                return
            sent = dict(self.headers.items())
            try:
                status, headers, payload = injector._forward(method, path, sent, body)
            except urllib3.exceptions.HTTPError as error:
                injector._record(method, path, 502, True)
                self.send_response(502)
                self._send_body("text/plain", f"upstream failed: {error}".encode())
                return
            injector._record(method, path, status, False)
            self.send_response(status)
            content_type = "application/json"
            for key, value in headers:
                if key.lower() == "content-type":
                    content_type = value
                else:
                    self.send_header(key, value)
            self._send_body(content_type, payload)

        def _send_body(self, content_type: str, payload: bytes) -> None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


def plain_kubeconfig(server: str) -> dict[str, Any]:
    """A kubeconfig that sends a client's requests, unauthenticated, to the injector at
    ``server``; the injector authenticates them upstream with its own certificate."""
    name = "fault-injector"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
