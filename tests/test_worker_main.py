"""``python worker_main.py`` with no configuration: embedded server, worker, metrics, UI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.operator import OperatorStatus
from service.temporal import connect
from tests.engine.helpers import send, start, wait_for

ROOT = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningWorker:
    def __init__(self, process: subprocess.Popen[str], address: str, ui: str, metrics: str):
        self.process, self.address, self.ui, self.metrics = process, address, ui, metrics
        self.output: list[str] = []


@pytest.fixture(scope="module")
def worker_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    state = tmp_path_factory.mktemp("worker-state")
    port, ui_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "AUTOPILOT_TEMPORAL_"))
    }
    env.update(
        AUTOPILOT_EMBEDDED_PORT=str(port),
        AUTOPILOT_EMBEDDED_UI_PORT=str(ui_port),
        AUTOPILOT_OPERATOR_MODULES="tests.engine.ticket_operator",
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "worker_main.py",
            "--no-watchers",
            "--state-dir",
            str(state),
            "--metrics-port",
            str(metrics_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningWorker(
        process,
        f"127.0.0.1:{port}",
        f"http://127.0.0.1:{ui_port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        running.output.append(line)
        if "worker on task queue" in line:
            break
    assert any("worker on task queue" in line for line in running.output), "".join(running.output)
    yield running
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_with_no_configuration_it_starts_the_embedded_server_and_prints_the_ui(worker_process):
    printed = "".join(worker_process.output)
    assert f"Temporal UI: {worker_process.ui}" in printed
    assert "operators:" in printed and "ticket" in printed
    with urllib.request.urlopen(worker_process.ui, timeout=10) as page:
        assert page.status == 200


async def test_a_workflow_started_against_it_has_search_attributes_and_current_details(
    worker_process,
):
    client = await connect(worker_process.address)
    handle = await start(client, "ticket", "autopilot", spec={"required_votes": 1})
    await send(handle, "Vote", "v1", voter="ann")
    current: OperatorStatus = await wait_for(handle, "InReview")
    description = await handle.describe()
    attributes = {key.name: value for key, value in description.typed_search_attributes}
    assert attributes["AutopilotOperator"] == "ticket"
    assert attributes["AutopilotState"] == "InReview"
    assert attributes["AutopilotTarget"] == f"tests/{current.target.name}"
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "state: **InReview**" in metadata.current_details
    with urllib.request.urlopen(worker_process.metrics, timeout=10) as page:
        assert "autopilot_transitions" in page.read().decode()
    await handle.terminate("test over")


def test_sigterm_stops_the_worker_and_the_embedded_server_cleanly(worker_process):
    worker_process.process.send_signal(signal.SIGTERM)
    assert worker_process.process.wait(timeout=60) == 0
