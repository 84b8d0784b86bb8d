"""Serve bare git repositories over git's smart HTTP protocol, with the real ``git http-backend``.

The GitOps tests need a git remote that behaves like GitHub's: Flux's source-controller and
plain ``git`` clone, fetch and push over HTTP. Rather than reimplement the protocol, every
request is handed to git's own CGI program, ``git http-backend``, with ``GIT_PROJECT_ROOT``
pointing at a directory of bare repositories; this module only translates HTTP to CGI and
back. Pushing is enabled (``http.receivepack``) because the local dev cluster has no users.

In-process (tests)::

    with GitHttpServer(root) as server:
        init_bare_repository(root, "config.git")
        subprocess.run(["git", "clone", server.repository_url("config.git"), "work"])

As a process: ``python -m devcluster.git_http --root DIR [--port N]`` prints the base URL and
serves until SIGTERM or SIGINT.

:func:`run_http_backend` is the translation alone, so that another HTTP handler (the fake
GitHub serves ``/<owner>/<repo>.git`` next to its REST API) can delegate git paths to it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self
from urllib.parse import urlsplit

log = logging.getLogger("devcluster.git_http")

#: The largest request body accepted (a push of the dev cluster's config repositories is
#: kilobytes; a bound keeps a runaway client from filling memory).
MAX_REQUEST_BYTES = 256 * 1024 * 1024

#: How long one ``git http-backend`` run may take before it is killed.
BACKEND_TIMEOUT_SECONDS = 120.0


class RequestTooLarge(ValueError):
    """The request body is larger than :data:`MAX_REQUEST_BYTES`."""


def git_executable() -> str:
    """Return the path of ``git``; raise a clear error if it is not installed."""
    found = shutil.which("git")
    if found is None:
        raise RuntimeError("git is not installed; the GitOps dev services need it on PATH")
    return found


def init_bare_repository(root: Path, name: str, *, initial_branch: str = "main") -> Path:
    """Create the bare repository ``root/name`` (idempotent) and return its path.

    The name may contain one directory level (``owner/repo.git``), as GitHub's URLs do.
    """
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise ValueError(f"repository name {name!r} leaves the root directory")
    if (path / "HEAD").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [git_executable(), "init", "--quiet", "--bare", f"--initial-branch={initial_branch}"],
        cwd=path,
        check=True,
        capture_output=True,
    )
    return path


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """Read the request body, plain (Content-Length) or chunked (git sends large pushes so)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = handler.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers (none from git), then the blank line that ends the body.
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_REQUEST_BYTES:
                raise RequestTooLarge(f"request body over {MAX_REQUEST_BYTES} bytes")
            parts.append(handler.rfile.read(size))
            handler.rfile.readline(1024)  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"request body over {MAX_REQUEST_BYTES} bytes")
    return handler.rfile.read(length) if length else b""


def _split_cgi_output(output: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Split a CGI response into status, reason, headers and body."""
    separator = output.find(b"\r\n\r\n")
    skip = 4
    if separator < 0:
        separator = output.find(b"\n\n")
        skip = 2
    if separator < 0:
        return 502, "Bad Gateway", [], b"git http-backend wrote no headers\n"
    head, body = output[:separator], output[separator + skip :]
    status, reason = 200, "OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code, _, text = value.partition(" ")
            status, reason = int(code), text or reason
        elif name:
            headers.append((name, value))
    return status, reason, headers, body


def run_http_backend(handler: BaseHTTPRequestHandler, project_root: Path, path_info: str) -> None:
    """Answer ``handler``'s request for ``path_info`` with ``git http-backend``.

    ``path_info`` is the path below ``project_root`` (``/owner/repo.git/info/refs``); the query
    string is taken from the request line.
    """
    try:
        body = _read_body(handler)
    except RequestTooLarge as error:
        handler.send_error(413, str(error))
        return
    except ValueError:
        handler.send_error(400, "malformed request body")
        return
    query = urlsplit(handler.path).query
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        # Anyone may push: the dev services have no users (the fake GitHub checks tokens).
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": handler.command,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": handler.client_address[0],
    }
    for header in ("Content-Encoding", "Git-Protocol"):
        value = handler.headers.get(header)
        if value:
            env["HTTP_" + header.upper().replace("-", "_")] = value
    try:
        completed = subprocess.run(
            [git_executable(), "http-backend"],
            input=body,
            capture_output=True,
            env=env,
            timeout=BACKEND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        handler.send_error(504, "git http-backend timed out")
        return
    if completed.stderr:
        log.debug("git http-backend %s: %s", path_info, completed.stderr.decode(errors="replace"))
    status, reason, headers, payload = _split_cgi_output(completed.stdout)
    handler.send_response(status, reason)
    for name, value in headers:
        if name.lower() not in ("content-length", "connection"):
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


class Background:
    """``with`` starts a background server and stops it on leaving (tests use it so)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT arrives (the command lines of the dev services)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stop.wait()


class _GitHandler(BaseHTTPRequestHandler):
    """Every GET and POST goes to ``git http-backend``; the server holds the root."""

    server: _GitServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        run_http_backend(self, self.server.project_root, urlsplit(self.path).path)

    def do_POST(self) -> None:
        run_http_backend(self, self.server.project_root, urlsplit(self.path).path)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _GitServer(ThreadingHTTPServer):
    daemon_threads = True
    project_root: Path


class GitHttpServer(Background):
    """A smart-HTTP git server for the bare repositories under ``root``, on 127.0.0.1.

    Port 0 (the default) picks a free port; :attr:`url` says which. Use as a context manager
    or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root.resolve()
        self._server = _GitServer((host, port), _GitHandler)
        self._server.project_root = self.root
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL; a repository ``r.git`` under the root is at ``{url}/r.git``."""
        return f"http://{self._server.server_address[0]!s}:{self.port}"

    def repository_url(self, name: str) -> str:
        """The clone URL of the repository ``name`` under the root."""
        return f"{self.url}/{name.lstrip('/')}"

    def start(self) -> Self:
        """Serve in a background thread; return self."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="git-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.git_http",
        description="Serve the bare git repositories under a directory over smart HTTP "
        "(clone, fetch and push) with git http-backend.",
    )
    parser.add_argument("--root", required=True, type=Path, help="directory of bare repositories")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free one)")
    parser.add_argument(
        "--init",
        action="append",
        default=[],
        metavar="NAME",
        help="create this bare repository under the root first (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until a signal arrives, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    root: Path = args.root
    root.mkdir(parents=True, exist_ok=True)
    for name in args.init:
        init_bare_repository(root, name)
    server = GitHttpServer(root, host=args.host, port=args.port).start()
    print(server.url, flush=True)
    log.info("serving git repositories under %s at %s", root, server.url)
    try:
        wait_for_stop_signal()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
