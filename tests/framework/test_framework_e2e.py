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
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from service.temporal import connect
from tests.framework.beacon_operator import BEACON_LABEL
from tests.framework.processes import (
    SECRET,
    WorkerProcess,
    cli,
    create_app,
    status_of,
    worker_fixture,
)
from tests.waiting import eventually
from watchers.webhooks import sign

pytestmark = pytest.mark.cluster

MODULE = "tests.framework.beacon_operator"


worker = worker_fixture(MODULE)


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
    return cli(kubeconfig, temporal_address, MODULE, *args)


async def test_an_operator_from_the_test_tree_is_fed_by_a_kind_a_query_and_a_webhook_and_steered(
    worker: WorkerProcess,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    workflow_id = f"beacon/{namespace}/web"
    create_app(kube_api, namespace, "web")

    # The Kubernetes sense: a labelled ConfigMap starts the instance with its level.
    _beacon(kube_api, namespace, "web", "amber")
    status = await eventually(
        lambda: status_of(temporal, workflow_id),
        lambda s: s is not None and s.data.get("level") == "amber",
        what=f"{workflow_id} started with level amber\n{worker.output()}",
    )
    assert status.state == "Watching"
    _beacon(kube_api, namespace, "web", "red")
    await eventually(
        lambda: status_of(temporal, workflow_id),
        lambda s: s is not None and s.data.get("level") == "red",
        what="the changed level",
    )

    # The PromQL sense: the simulator's traffic to the Deployment "web", read every 2 s.
    status = await eventually(
        lambda: status_of(temporal, workflow_id),
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
        lambda: status_of(temporal, workflow_id),
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
        lambda: status_of(temporal, workflow_id),
        lambda s: s is not None and s.state == "Gone",
        what="Gone",
    )
    assert status.outcome == "succeeded"
