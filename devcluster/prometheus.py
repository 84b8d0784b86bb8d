"""Run a real Prometheus that scrapes the data-plane simulator and Autopilot's own metrics.

The binary is the distribution's ``prometheus`` package, started by hand (no service manager)
with our own configuration and data directory in the state directory, listening on loopback.
``scrape_interval: 1s`` makes a metric written by the simulator queryable within seconds, so
analysis steps in tests do not wait for minutes. Queries users write for Istio work unchanged,
because the simulator emits Istio's metric names and labels (``honor_labels`` keeps them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from devcluster.process import ManagedProcess, StartupError, http_ok, spawn, wait_until_ready

#: Seconds to wait for ``/-/ready``.
STARTUP_TIMEOUT = 60.0

#: Job names in the scrape configuration (visible as the ``job`` label).
SIM_JOB = "dataplane-sim"
AUTOPILOT_JOB = "autopilot"


def url(port: int) -> str:
    """Return the base URL of a Prometheus on ``port``."""
    return f"http://127.0.0.1:{port}"


def ready(port: int) -> bool:
    """Return whether the Prometheus on ``port`` is ready to serve queries."""
    return http_ok(f"{url(port)}/-/ready")


def find_prometheus(install: bool = True, progress: Callable[[str], None] | None = None) -> str:
    """Return the ``prometheus`` executable, installing the Debian package if allowed.

    Args:
        install: Run ``apt-get update`` and ``apt-get install -y prometheus`` when missing
            (only possible as root).
        progress: Receives a line before each slow step.

    Raises:
        StartupError: Prometheus is missing and cannot be installed here.
    """
    found = shutil.which("prometheus") or _existing("/usr/bin/prometheus")
    if found:
        return found
    hint = "install it with 'apt-get install prometheus' (Debian/Ubuntu) or put it on PATH"
    apt = shutil.which("apt-get")
    if not install or apt is None or os.geteuid() != 0:
        raise StartupError(f"prometheus not found: {hint}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["update"], ["install", "-y", "--no-install-recommends", "prometheus"]):
        if progress:
            progress(f"apt-get {' '.join(step)}")
        result = subprocess.run(
            [apt, *step], capture_output=True, text=True, env=env, check=False, timeout=900
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise StartupError(f"apt-get {step[0]} failed (exit {result.returncode}): {tail}")
    found = shutil.which("prometheus") or _existing("/usr/bin/prometheus")
    if not found:
        raise StartupError(f"prometheus still not found after apt-get install: {hint}")
    return found


def scrape_config(sim_port: int, autopilot_port: int) -> dict[str, object]:
    """Return the Prometheus configuration for the dev cluster."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": SIM_JOB,
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{sim_port}"]}],
            },
            {
                "job_name": AUTOPILOT_JOB,
                "static_configs": [{"targets": [f"127.0.0.1:{autopilot_port}"]}],
            },
        ],
    }


def start_prometheus(
    binary: str, state_dir: Path, *, port: int, sim_port: int, autopilot_port: int
) -> ManagedProcess:
    """Write the configuration and start Prometheus, without waiting for it.

    Call :func:`wait_prometheus` afterwards; starting does not block so that other parts
    can start meanwhile.

    Raises:
        StartupError: The binary could not be started.
    """
    directory = state_dir / "prometheus"
    (directory / "data").mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(sim_port, autopilot_port), sort_keys=False))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
        "--log.level=warn",
    ]
    return spawn("prometheus", argv, state_dir / "logs" / "prometheus.log", cwd=directory)


def wait_prometheus(process: ManagedProcess, port: int) -> None:
    """Wait until Prometheus on ``port`` is ready.

    Raises:
        StartupError: Prometheus exited or was not ready in time.
    """
    wait_until_ready(process, lambda: ready(port), timeout=STARTUP_TIMEOUT, what="prometheus")


def _existing(path: str) -> str | None:
    return path if Path(path).is_file() else None
