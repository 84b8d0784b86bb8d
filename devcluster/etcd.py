"""Run a single-member etcd on loopback as the API server's storage.

Only the API server talks to it, over plain HTTP on 127.0.0.1. Its data directory lives in the
state directory, so objects survive ``autopilot dev down`` / ``up``. ``--unsafe-no-fsync``
trades crash durability (irrelevant for a dev cluster) for much faster writes on shared disks.
"""

from __future__ import annotations

from pathlib import Path

from devcluster.process import ManagedProcess, http_ok, spawn, wait_until_ready

#: Seconds to wait for etcd to report healthy.
STARTUP_TIMEOUT = 60.0


def client_url(port: int) -> str:
    """Return the client URL of an etcd listening on ``port``."""
    return f"http://127.0.0.1:{port}"


def healthy(port: int) -> bool:
    """Return whether the etcd on ``port`` reports itself healthy."""
    return http_ok(f"{client_url(port)}/health")


def start_etcd(binary: Path, state_dir: Path, port: int, peer_port: int) -> ManagedProcess:
    """Start etcd and wait until it is healthy.

    Args:
        binary: The etcd executable.
        state_dir: Dev cluster state directory; data goes to ``etcd/`` inside it.
        port: Client port.
        peer_port: Peer port (unused by others, but etcd always listens on one).

    Raises:
        StartupError: etcd exited or did not become healthy in time.
    """
    data_dir = state_dir / "etcd"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    peer_url = f"http://127.0.0.1:{peer_port}"
    argv = [
        str(binary),
        "--name=autopilot-dev",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url(port)}",
        f"--advertise-client-urls={client_url(port)}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=autopilot-dev={peer_url}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]
    process = spawn("etcd", argv, state_dir / "logs" / "etcd.log")
    wait_until_ready(process, lambda: healthy(port), timeout=STARTUP_TIMEOUT, what="etcd")
    return process
