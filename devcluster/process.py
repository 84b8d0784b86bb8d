"""Start, watch and stop the dev cluster's server processes, by recorded PID only.

Every server runs in its own session so that it outlives the ``autopilot dev up`` command that
started it. What identifies a process is its PID *and* its kernel start time (from
``/proc/<pid>/stat``): a PID recorded yesterday may belong to someone else today, and ``down``
must never signal a process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads cluster state through this module: no HTTP stack for that
    import ssl


class StartupError(RuntimeError):
    """A server did not come up; the message says which, why, and where its log is."""


@dataclass
class ManagedProcess:
    """A server process started by the dev cluster.

    Attributes:
        name: Short part name, e.g. ``etcd``.
        pid: Process id.
        start_ticks: Kernel start time of the process, guarding against PID reuse.
        argv: Command line it was started with.
        log: File that receives its stdout and stderr.
    """

    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: Path
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        """Return whether this exact process is still running (zombies count as exited)."""
        if self._popen is not None:
            return self._popen.poll() is None
        stat = _read_stat(self.pid)
        if stat is None or stat[1] != self.start_ticks:
            return False
        if stat[0] == "Z":
            _reap(self.pid)
            return False
        return True

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Returns:
            True if the process was running and has now stopped.
        """
        if not self.alive():
            return False
        self._signal(signal.SIGTERM)
        if not _wait_for(lambda: not self.alive(), timeout):
            self._signal(signal.SIGKILL)
            _wait_for(lambda: not self.alive(), 5.0)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=1)
        return True

    def log_tail(self, lines: int = 15) -> str:
        """Return the last lines of the process's log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def to_record(self) -> dict[str, Any]:
        """Return a JSON-serialisable record for the state file."""
        return {
            "name": self.name,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "argv": self.argv,
            "log": str(self.log),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ManagedProcess:
        """Rebuild a process handle from a state-file record."""
        return cls(
            name=str(record["name"]),
            pid=int(record["pid"]),
            start_ticks=int(record["start_ticks"]),
            argv=[str(arg) for arg in record["argv"]],
            log=Path(str(record["log"])),
        )

    def _signal(self, signum: signal.Signals) -> None:
        # Re-check identity right before signalling: only ever signal the process we started.
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start ``argv`` in a new session with output appended to ``log``.

    Raises:
        StartupError: The executable could not be started.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        output.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        output.flush()
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as error:
            raise StartupError(f"could not start {name} ({argv[0]}): {error}") from error
    stat = _read_stat(popen.pid)
    return ManagedProcess(
        name=name,
        pid=popen.pid,
        start_ticks=stat[1] if stat else 0,
        argv=list(argv),
        log=log,
        _popen=popen,
    )


def wait_until_ready(
    process: ManagedProcess,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
) -> None:
    """Poll ``ready`` until it returns True, failing early if ``process`` exits.

    Raises:
        StartupError: The process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if ready():
            return
        if not process.alive():
            raise StartupError(
                f"{what} exited during startup; log: {process.log}\n{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            process.stop()
            raise StartupError(
                f"{what} was not ready after {timeout:.0f}s; log: {process.log}\n"
                f"{process.log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Return whether nothing listens on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def http_ok(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    """Return whether a GET of ``url`` answers 2xx."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _read_stat(pid: int) -> tuple[str, int] | None:
    """Return (state, start time in clock ticks) of ``pid`` from ``/proc``, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
