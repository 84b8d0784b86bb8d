"""``autopilot demo`` end to end, run as a user runs it: a process, its output, its exit code.

The first test is the main job on a fresh machine's path: the demo starts its own cluster
(free ports, a temporary state directory), applies podinfo and its Canary and ships v2 and
v3 with the real kubectl, its worker's watcher starts the rollouts, v2 is promoted, v3 rolled
back, a new Service checked in gets its route, and everything it started is stopped. The
others run the demo on the session's cluster, which it must leave running: ``--keep`` leaves
the demo's worker, rollouts and route up; Ctrl-C cleans up mid-rollout and leaves nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from kubernetes import client
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from cli.demo import DEMO_OBJECTS, demo
from cli.demo_rollout import delete_canary, delete_objects, terminate_open
from devcluster.cluster import DevCluster
from models.operator import OperatorStatus
from service.temporal import connect
from tests.watchers.support import kubectl

ROOT = Path(__file__).resolve().parent.parent


def _ctrl_c_as_on_a_terminal() -> None:
    """Give the demo the default SIGINT action, as a shell gives its foreground job.

    A shell without job control (a CI script's background step) starts its children with
    SIGINT ignored, and Python keeps it ignored: the Ctrl-C test's signal was then lost and
    the demo ran to its end (exit 0 instead of 130).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """``autopilot demo`` in a subprocess, its output collected line by line as it comes."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "COLUMNS": "160", "AUTOPILOT_DEBUG": ""}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "demo", "--interval", "2", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_ctrl_c_as_on_a_terminal,
        )
        self.lines: list[str] = []
        self._ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
        self._ended.set()

    def wait_for_line(self, pattern: str, timeout: float = 300) -> re.Match[str]:
        """Read output until a line matches ``pattern`` (a functional wait, bounded)."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            ended = self._ended.is_set()
            for line in self.lines[checked:]:
                if found := re.search(pattern, line):
                    return found
                checked += 1
            if ended or time.monotonic() > deadline:
                raise AssertionError(f"no line matched {pattern!r}; output:\n{self.output}")
            time.sleep(0.1)

    def finish(self, timeout: float = 420) -> int:
        """Wait for the demo to exit; return its exit code (the output is then complete).

        The bound is below pytest's timeout, so a demo that hangs fails with its output.
        """
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the demo did not exit; output:\n{self.output}") from None
        self._ended.wait(timeout=10)
        return code

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    @property
    def worker_pid(self) -> int:
        """The PID of the worker the demo started (from its output)."""
        return int(self.wait_for_line(r"worker running \(pid (\d+)").group(1))

    def namespace(self) -> str:
        """The Kubernetes namespace the demo deploys into (from its output)."""
        return self.wait_for_line(r"\$ kubectl apply -n (demo[-\d]*) -f demo/podinfo.yaml").group(1)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.fixture
def own_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory for a demo that starts its own cluster; stopped if a test fails."""
    state = tmp_path / "demo-cluster"
    yield state
    DevCluster(state).down()


@pytest.mark.cluster
@pytest.mark.temporal
async def test_the_demo_promotes_v2_rolls_back_v3_routes_a_new_service_and_stops_everything(
    own_state_dir: Path,
) -> None:
    run = Demo("--state-dir", str(own_state_dir), "--free-ports")
    worker = await asyncio.to_thread(lambda: run.worker_pid)
    code = await asyncio.to_thread(run.finish)
    output = run.output

    assert code == 0, output
    assert "✓ v1 initialized" in output
    assert re.search(
        r"✓ v2 promoted in \d+s .*canary weights 0 → 10 → 20 → 30 → 40 → 50 → 0", output
    )
    assert re.search(
        r"✓ v3 rolled back in \d+s \(state Failed\); canary weights 0 → 10 .*→ 0$",
        output,
        re.MULTILINE,
    )
    assert "VirtualService podinfo: primary 50% · canary 50%" in output  # seen live, on the object
    assert re.search(r"request-success-rate \d+(\.\d+)? ✗ \(≥ 99\)", output)  # why v3 failed
    assert re.search(
        r"rollout workflow: http://127\.0\.0\.1:\d+/namespaces/default/workflows/"
        r"canary%2Fdemo%2Fpodinfo",
        output,
    )
    # The user's path: kubectl applied the app and its Canary and shipped each version; the
    # watcher in the demo's worker started the rollouts; the status mirror wrote the phase.
    assert "$ kubectl apply -n demo -f demo/podinfo.yaml" in output
    assert re.search(r"^\$ kubectl apply -n demo -f \S+canary\.yaml$", output, re.MULTILINE)
    assert "canary.autopilot.dev/podinfo created" in output
    image = "deployment/podinfo podinfod=ghcr.io/stefanprodan/podinfo"
    assert f"$ kubectl set image -n demo {image}:6.5.1" in output
    assert "$ kubectl annotate -n demo deployment/podinfo --overwrite " in output
    assert f"$ kubectl set image -n demo {image}:6.5.2" in output
    assert re.search(r"^  podinfo\s+Failed\s", output, re.MULTILINE)  # kubectl get canary
    assert "kubectl autopilot status -n demo podinfo" in output  # what to type next
    # Plain and unwrapped without a terminal: no boxes, a summary row on one line.
    assert "╭" not in output and "┏" not in output
    assert re.search(r"v2\s+6\.5\.1\s+healthy\s+promoted\s+promoted\s+0 → 10 → 20", output)
    # The last act: a new Service checked in with kubectl gets its route from autoroute.
    assert "$ kubectl apply -n demo -f demo/cart.yaml" in output
    assert "service/cart created" in output
    assert re.search(
        r"✓ cart Routed in \d+s: Requested → Planned → Applying → Verifying → Routed$",
        output,
        re.MULTILINE,
    )
    assert "$ kubectl get virtualservice -n demo" in output
    assert re.search(
        r"^  cart-route\s+\S*istio-system/ingressgateway\S*\s+\S*shop\.example\.com",
        output,
        re.MULTILINE,
    )
    assert re.search(
        r"verified by traffic \(simulated, through the gateway\): \d+ ready backend\(s\); "
        r"[\d.e+-]+ requests/s through shop\.example\.com/cart reach the Service",
        output,
    )
    assert re.search(r"cart\s+new Service, route shop\.example\.com/cart\s+Routed\s+Routed", output)
    assert "cleaned up: deleted Canary demo/podinfo" in output
    assert re.search(r"terminated [^;]*autoroute/demo/cart", output)
    assert "deleted the demo's objects in namespace demo" in output
    assert not alive(worker)
    assert DevCluster(own_state_dir).running_processes() == {}


@pytest.mark.cluster
@pytest.mark.temporal
async def test_keep_leaves_the_worker_the_rolled_back_rollout_and_the_route_running(
    dev_cluster: DevCluster, kube_api: client.ApiClient
) -> None:
    before = dev_cluster.running_processes()
    run = Demo("--state-dir", str(dev_cluster.state_dir), "--keep")
    worker = await asyncio.to_thread(lambda: run.worker_pid)
    namespace = await asyncio.to_thread(run.namespace)
    temporal = await connect(dev_cluster.env()["TEMPORAL_ADDRESS"])
    workflow = temporal.get_workflow_handle(f"canary/{namespace}/podinfo")
    route = temporal.get_workflow_handle(f"autoroute/{namespace}/cart")
    try:
        code = await asyncio.to_thread(run.finish)
        output = run.output
        assert code == 0, output
        assert "Everything is still running." in output
        assert f"autopilot status -n {namespace} podinfo" in output
        assert "Stop it all, the demo's worker included:" in output
        assert "autopilot dev down --state-dir" in output
        assert alive(worker)
        assert dev_cluster.running_processes() == {**before, "demo-worker": worker}
        apps = client.AppsV1Api(kube_api)
        primary = kube_api.sanitize_for_serialization(
            apps.read_namespaced_deployment("podinfo-primary", namespace)
        )
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":6.5.1")
        status = await workflow.query("status", result_type=OperatorStatus)
        assert status.state == "Failed" and status.data["outcome"] == "rolled back"
        routed = await route.query("status", result_type=OperatorStatus)
        assert routed.state == "Routed" and routed.data["verified"] is True
        assert f"autopilot status autoroute/{namespace}/cart" in output
        # The rollouts' story, as `kubectl describe canary` tells it (the real kubectl).
        described = await asyncio.to_thread(
            kubectl, dev_cluster.kubeconfig_path, "describe", "canary", "podinfo", "-n", namespace
        )
        for reason in ("WeightChanged", "Promoted", "AnalysisFailed", "RolledBack"):
            assert reason in described, described
        worker_status = next(p for p in dev_cluster.status() if p.name == "demo-worker")
        assert (worker_status.state, worker_status.pid) == ("running", worker)
    finally:
        delete_canary(kube_api, namespace)  # while its watcher runs, as the demo would
        # What 'autopilot dev down' does first, without stopping the session's cluster.
        stopped = dev_cluster.down(only=["demo-worker"])
        await terminate_open(dev_cluster.env()["TEMPORAL_ADDRESS"], {workflow.id, route.id})
        delete_objects(kube_api, namespace, DEMO_OBJECTS)
    assert stopped == ["demo-worker"]
    assert not alive(worker)
    assert dev_cluster.running_processes() == before


@pytest.mark.cluster
@pytest.mark.temporal
async def test_ctrl_c_mid_rollout_cleans_up_what_the_demo_started_and_only_that(
    dev_cluster: DevCluster, kube_api: client.ApiClient
) -> None:
    before = dev_cluster.running_processes()
    run = Demo("--state-dir", str(dev_cluster.state_dir))
    worker = await asyncio.to_thread(lambda: run.worker_pid)
    namespace = await asyncio.to_thread(run.namespace)
    await asyncio.to_thread(run.wait_for_line, "VirtualService podinfo: primary 90% · canary 10%")

    run.process.send_signal(signal.SIGINT)  # v2 is under way
    code = await asyncio.to_thread(run.finish)

    assert code == 130, run.output
    assert "interrupted: cleaning up what the demo started" in run.output
    assert not alive(worker)
    assert dev_cluster.running_processes() == before  # the cluster it found is left running
    # Nothing is left in the namespace: no Deployment, Service, route or watcher state.
    assert client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items == []
    assert client.CoreV1Api(kube_api).list_namespaced_service(namespace).items == []
    assert (
        client.CoreV1Api(kube_api)
        .list_namespaced_config_map(
            namespace, field_selector="metadata.name=autopilot-demo-watchers"
        )
        .items
        == []
    )
    routes: Any = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices"
    )
    assert routes["items"] == []
    temporal = await connect(dev_cluster.env()["TEMPORAL_ADDRESS"])
    rollout = await temporal.get_workflow_handle(f"canary/{namespace}/podinfo").describe()
    assert rollout.status != WorkflowExecutionStatus.RUNNING


def test_the_help_says_what_the_demo_does_with_an_example() -> None:
    app = typer.Typer()
    app.command()(demo)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0
    assert "v2 promoted, then v3 rolled back" in result.output
    assert "Example: autopilot demo --keep" in result.output
    assert "--free-ports" in result.output and "--state-dir" in result.output
