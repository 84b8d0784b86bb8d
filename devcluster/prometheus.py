"""Run a real Prometheus that scrapes the data-plane simulator and Autopilot's own metrics.

The binary is the distribution's ``prometheus`` package, started by hand (no service manager)
with our own configuration and data directory in the state directory, listening on loopback.
``scrape_interval: 1s`` (the default) makes a metric written by the simulator queryable within
seconds, so analysis steps in tests do not wait for minutes. A run with hundreds of services
wants a longer one (``autopilot dev up --scrape-interval 5``): each scrape of the simulator
carries about 93 KB per service, as Envoy's would. Queries users write for Istio work unchanged,
because the simulator emits Istio's metric names and labels (``honor_labels`` keeps them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from devcluster.process import ManagedProcess, StartupError, http_ok, spawn, wait_until_ready

#: Seconds to wait for ``/-/ready``.
STARTUP_TIMEOUT = 60.0

#: Seconds between scrapes unless chosen, and the bounds of a choice (the timeout is the
#: interval itself, so a slow scrape is cut off only when the next one is due).
DEFAULT_SCRAPE_INTERVAL = 1.0
MIN_SCRAPE_INTERVAL = 0.5
MAX_SCRAPE_INTERVAL = 60.0

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


def duration(seconds: float) -> str:
    """A Prometheus duration: ``5s``, or ``500ms`` for a part of a second."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def scrape_config(
    sim_port: int, autopilot_port: int, interval: float = DEFAULT_SCRAPE_INTERVAL
) -> dict[str, Any]:
    """Return the Prometheus configuration for the dev cluster, scraping every ``interval``."""
    every = duration(interval)
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
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


def write_config(state_dir: Path, *, sim_port: int, autopilot_port: int, interval: float) -> bool:
    """Write ``prometheus.yml`` into the state directory; whether it changed."""
    config = state_dir / "prometheus" / "prometheus.yml"
    text = yaml.safe_dump(scrape_config(sim_port, autopilot_port, interval), sort_keys=False)
    if config.is_file() and config.read_text() == text:
        return False
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return True


def reload(process: ManagedProcess) -> None:
    """Make a running Prometheus read its configuration again (SIGHUP, its reload signal)."""
    os.kill(process.pid, signal.SIGHUP)


def start_prometheus(
    binary: str,
    state_dir: Path,
    *,
    port: int,
    sim_port: int,
    autopilot_port: int,
    interval: float = DEFAULT_SCRAPE_INTERVAL,
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
    write_config(state_dir, sim_port=sim_port, autopilot_port=autopilot_port, interval=interval)
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
