"""A rollout survives its worker being killed (SIGKILL) and restarted: no step skipped,
repeated out of order, or lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.canary.cluster import app_deployment, create_app, deployment, new_revision
from tests.canary.e2e import Rollouts, WeightRecorder
from tests.canary.specs import spec_dict

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

ROOT = Path(__file__).resolve().parents[2]
V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"


class WorkerProcess:
    """``python -m tests.canary.worker_process`` that the test can kill -9 and start again."""

    def __init__(self, address: str, task_queue: str) -> None:
        self.args = [sys.executable, "-m", "tests.canary.worker_process", address, task_queue]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def worker_process(temporal_address: str, canary_env: None) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(temporal_address, f"canary-kill-{uuid.uuid4().hex[:8]}")
    try:
        yield worker
    finally:
        worker.stop()


async def test_a_rollout_finishes_every_step_after_its_worker_is_killed(
    rollouts: Rollouts, worker_process: WorkerProcess, kube_api, namespace
):
    spec = spec_dict("podinfo", interval="2s", threshold=2)
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    remote = Rollouts(rollouts.client, worker_process.args[-1])
    worker_process.start()
    assert (await (await remote.start(namespace, "podinfo", spec)).result()).state == "Succeeded"

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await remote.start(namespace, "podinfo", spec)
        await remote.wait_for_weight(handle, 20)
        worker_process.kill()
        worker_process.start()
        status = await handle.result()

    assert status.state == "Succeeded"
    assert recorder.canary_weights == [0, 10, 20, 30, 40, 50, 0]
    assert status.data["applied_weights"] == [0, 10, 20, 30, 40, 50, 0]
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2


@pytest.mark.skipif(
    bool(os.environ.get("AUTOPILOT_TEST_CLUSTER_STATE")),
    reason="restarts Temporal: not on a cluster you run yourself",
)
async def test_a_rollout_finishes_every_step_after_the_temporal_server_restarts(
    rollouts: Rollouts, worker_process: WorkerProcess, dev_cluster, kube_api, namespace
):
    spec = spec_dict("podinfo", interval="2s", threshold=2)
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    remote = Rollouts(rollouts.client, worker_process.args[-1])
    worker_process.start()
    assert (await (await remote.start(namespace, "podinfo", spec)).result()).state == "Succeeded"

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await remote.start(namespace, "podinfo", spec)
        await remote.wait_for_weight(handle, 20)
        # Same database file when it comes back.
        await asyncio.to_thread(dev_cluster.down, only=["temporal"])
        await asyncio.to_thread(dev_cluster.up)
        status = await handle.result()

    assert status.state == "Succeeded"
    assert recorder.canary_weights == [0, 10, 20, 30, 40, 50, 0]
    assert status.data["applied_weights"] == [0, 10, 20, 30, 40, 50, 0]
