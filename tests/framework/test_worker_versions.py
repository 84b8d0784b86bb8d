"""A new worker version never breaks a running rollout: old runs finish on the old version.

Two builds of one pinned operator (``relay_v1``, ``relay_v2``: version 2 changes what ``go``
does, in a way version 1's histories would not replay) run as real worker processes
(``worker_main.py`` with ``AUTOPILOT_BUILD_ID``) against the session's Temporal server, with
Temporal Worker Versioning: rollouts started on A finish on A with A's machine, rollouts
started after B became current run B, and none is started twice or moved.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from models.operator import OperatorStatus
from service.temporal import connect
from tests.operators.support import command, start, wait_for

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``worker_main.py`` of one build, with its output."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process, self.log = process, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker never printed {text!r}:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def builds(temporal_address: str, tmp_path: Path) -> Iterator[Any]:
    """Starts worker builds on one task queue and Worker Deployment of the test's own."""
    queue = f"relay-{uuid.uuid4().hex[:8]}"
    deployment = f"autopilot-test-{uuid.uuid4().hex[:8]}"
    started: list[WorkerProcess] = []

    def run(build: str, module: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
        env.update(
            PYTHONPATH=str(ROOT),
            AUTOPILOT_OPERATOR_MODULES=module,
            AUTOPILOT_BUILD_ID=build,
            AUTOPILOT_DEPLOYMENT_NAME=deployment,
        )
        log = tmp_path / f"worker-{build}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "worker_main.py",
                    "--address",
                    temporal_address,
                    "--task-queue",
                    queue,
                    "--no-watchers",
                    "--metrics-port",
                    "0",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        worker.wait_for_line(f"worker version {deployment}.{build} is current")
        return worker

    run.queue = queue  # type: ignore[attr-defined]
    run.deployment = deployment  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        for worker in started:
            worker.stop()


async def _pinned_build(handle: WorkflowHandle[Any, Any]) -> str:
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return str(info.deployment_version.build_id)


async def test_rollouts_started_on_a_finish_on_a_while_new_ones_run_b(
    builds: Any, temporal_address: str
) -> None:
    temporal: Client = await connect(temporal_address)
    version_a = builds("a", "tests.framework.relay_v1")
    old = [await start(temporal, "relay", builds.queue) for _ in range(2)]
    for handle in old:
        await wait_for(handle, "Waiting")
        assert await _pinned_build(handle) == "a"

    builds("b", "tests.framework.relay_v2")
    new = await start(temporal, "relay", builds.queue)
    await wait_for(new, "Waiting")
    assert await _pinned_build(new) == "b"

    for handle in [*old, new]:
        receipt = await command(handle, "go")
        assert receipt.outcome == "applied"
    finished: list[OperatorStatus] = [await handle.result() for handle in [*old, new]]

    for status in finished[:2]:  # version 1's machine, from start to end
        assert status.data["version"] == "v1"
        assert [t.target for t in status.transitions] == ["Done"]
    assert finished[2].data["version"] == "v2"
    assert [t.target for t in finished[2].transitions] == ["Handing", "Done"]
    for handle in [*old, new]:  # one run each: nothing was started again
        runs = [run async for run in temporal.list_workflows(f"WorkflowId = '{handle.id}'")]
        assert len(runs) == 1
    assert "Traceback" not in version_a.output()
