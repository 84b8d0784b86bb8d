"""An operator written outside Autopilot is fed, steered and shown with no edit to our code.

The operator (``beacon_operator.py``) lives only in the test tree. The real worker process
(``worker_main.py``) loads it from ``AUTOPILOT_OPERATOR_MODULES``, builds its watchers from the
senses it declares, and the ``autopilot`` CLI finds its command in the registry: everything
runs against the session's local cluster (kube-apiserver, Prometheus fed by the data-plane
simulator, Temporal).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from devcluster.crds import install_autopilot_crds
from models.operator import OperatorStatus
from service.temporal import connect
from tests.framework.beacon_operator import BEACON_LABEL
from tests.waiting import eventually
from watchers.webhooks import sign

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
SECRET = "beacon-test-secret"
MODULE = "tests.framework.beacon_operator"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """The worker process, its task queue and its webhook port."""

    def __init__(self, process: subprocess.Popen[str], queue: str, port: int, log: Path):
        self.process, self.queue, self.port, self.log = process, queue, port, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _env(kubeconfig: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    env.update(
        KUBECONFIG=str(kubeconfig),
        AUTOPILOT_OPERATOR_MODULES=MODULE,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture
def worker(
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    prometheus_url: str,
    temporal_address: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Worker]:
    """``worker_main.py`` with the beacon operator, its watchers on the test's namespace."""
    install_autopilot_crds(kube_api)
    queue = f"beacon-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = _env(
        kubeconfig_path,
        AUTOPILOT_WATCH_NAMESPACES=json.dumps([namespace]),
        AUTOPILOT_WATCH_STATE_NAMESPACE=namespace,
        AUTOPILOT_WATCH_LEADER_ELECTION="false",
        AUTOPILOT_WATCH_PROMETHEUS_URL=prometheus_url,
        AUTOPILOT_WEBHOOK_PORT=str(port),
        AUTOPILOT_WEBHOOK_EVENTS_SECRET=SECRET,
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "worker_main.py",
                "--address",
                temporal_address,
                "--task-queue",
                queue,
                "--metrics-port",
                "0",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    running = Worker(process, queue, port, log)
    try:
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _create_app(api: client.ApiClient, namespace: str, name: str) -> None:
    """A Deployment, its Service and a VirtualService, so the simulator sends it traffic."""
    labels = {"app": name}
    deployment: Any = {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/web:1"}]},
            },
        },
    }
    service: Any = {
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80}]},
    }
    route: Any = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name}, "weight": 100}]}],
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    client.CoreV1Api(api).create_namespaced_service(namespace, service)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", route
    )


def _beacon(api: client.ApiClient, namespace: str, name: str, level: str) -> None:
    body: Any = {
        "metadata": {"name": name, "labels": {BEACON_LABEL: "true"}},
        "data": {"level": level},
    }
    core = client.CoreV1Api(api)
    try:
        core.create_namespaced_config_map(namespace, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        core.patch_namespaced_config_map(name, namespace, {"data": {"level": level}})


def _post_event(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=raw,
        headers={"Content-Type": "application/json", "X-Autopilot-Signature": sign(SECRET, raw)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError):
        return 0, {}


def _cli(kubeconfig: Path, temporal_address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, "--address", temporal_address],
        cwd=ROOT,
        env=_env(kubeconfig),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _status(temporal: Client, workflow_id: str) -> OperatorStatus | None:
    handle = temporal.get_workflow_handle(workflow_id, result_type=OperatorStatus)
    try:
        description = await handle.describe()
        if description.status is not None and description.status.name == "COMPLETED":
            return await handle.result()
        status: OperatorStatus = await handle.query("status", result_type=OperatorStatus)
        return status
    except Exception:
        return None


async def test_an_operator_from_the_test_tree_is_fed_by_a_kind_a_query_and_a_webhook_and_steered(
    worker: Worker,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    workflow_id = f"beacon/{namespace}/web"
    _create_app(kube_api, namespace, "web")

    # The Kubernetes sense: a labelled ConfigMap starts the instance with its level.
    _beacon(kube_api, namespace, "web", "amber")
    status = await eventually(
        lambda: _status(temporal, workflow_id),
        lambda s: s is not None and s.data.get("level") == "amber",
        what=f"{workflow_id} started with level amber\n{worker.output()}",
    )
    assert status.state == "Watching"
    _beacon(kube_api, namespace, "web", "red")
    await eventually(
        lambda: _status(temporal, workflow_id),
        lambda s: s is not None and s.data.get("level") == "red",
        what="the changed level",
    )

    # The PromQL sense: the simulator's traffic to the Deployment "web", read every 2 s.
    status = await eventually(
        lambda: _status(temporal, workflow_id),
        lambda s: s is not None and (s.data.get("last_rate") or 0) > 0,
        attempts=480,
        what=f"a request rate above 0 for web\n{worker.output()}",
    )
    assert status.data["readings"] >= 1

    # The webhook sense: Flare is accepted for beacon, anything undeclared is refused.
    base = {"operator": "beacon", "namespace": namespace, "name": "web", "payload": {}}
    code, answer = await eventually(
        lambda: asyncio.to_thread(_post_event, worker.port, {**base, "id": "f1", "type": "Flare"}),
        lambda result: result[0] != 0,
        what="the webhook server",
    )
    assert code == 202, answer
    code, answer = await asyncio.to_thread(
        _post_event, worker.port, {**base, "id": "f2", "type": "Glow"}
    )
    assert code == 400 and "Glow" in json.dumps(answer), answer
    await eventually(
        lambda: _status(temporal, workflow_id),
        lambda s: s is not None and s.state == "Flared",
        what="Flared",
    )

    # Its own command, from the registry, through the CLI.
    dim = await asyncio.to_thread(
        _cli, kubeconfig_path, temporal_address, "beacon", "dim", f"{namespace}/web", "-o", "json"
    )
    assert dim.returncode == 0, dim.stdout + dim.stderr
    assert json.loads(dim.stdout)["outcome"] == "applied"
    listed = await asyncio.to_thread(
        _cli, kubeconfig_path, temporal_address, "list", "--operator", "beacon", "-o", "json"
    )
    assert listed.returncode == 0, listed.stderr
    assert workflow_id in listed.stdout
    shown = await asyncio.to_thread(
        _cli, kubeconfig_path, temporal_address, "status", workflow_id, "-o", "json"
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "Watching"

    # Deleting the ConfigMap ends it.
    client.CoreV1Api(kube_api).delete_namespaced_config_map("web", namespace)
    status = await eventually(
        lambda: _status(temporal, workflow_id),
        lambda s: s is not None and s.state == "Gone",
        what="Gone",
    )
    assert status.outcome == "succeeded"
