"""The resilience operator end to end: a degrading service is tightened, gated, then relaxed.

On the session's local cluster: the real worker process runs the operator and its watchers
(the Service sense and the two PromQL senses); the data-plane simulator makes the service's
workload fail half its requests, then heals it; Prometheus scrapes what the simulator's
Envoys report. What a platform engineer would check is checked: the DestinationRule itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from models.operator import OperatorStatus
from models.resilience import LEVELS, OPT_IN
from service.temporal import connect
from tests.framework.processes import WorkerProcess, cli, create_app, status_of, worker_fixture
from tests.waiting import eventually

pytestmark = pytest.mark.cluster

MODULES = "workflows.resilience"
ERROR_RATE = "sim.autopilot.dev/error-rate"


worker = worker_fixture(MODULES)


def _rule(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        rule: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, "destinationrules", f"{name}-resilience"
        )
        return dict(rule)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def _policy(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    rule = _rule(api, namespace, name)
    return None if rule is None else rule["spec"]["trafficPolicy"]


def _error_rate(api: client.ApiClient, namespace: str, name: str, rate: str | None) -> None:
    patch = {"spec": {"template": {"metadata": {"annotations": {ERROR_RATE: rate}}}}}
    client.AppsV1Api(api).patch_namespaced_deployment(name, namespace, patch)


async def test_a_degrading_service_is_tightened_gated_and_relaxed_with_every_change_recorded(
    worker: WorkerProcess,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    spec = {"recoverAfter": 1, "approvalAbove": 1, "maxErrorRate": 5}
    create_app(kube_api, namespace, "api", **{OPT_IN: json.dumps(spec)})
    workflow_id = f"resilience/{namespace}/api"

    def status() -> Any:
        return status_of(temporal, workflow_id)

    def error_rate(s: OperatorStatus | None) -> float | None:
        return None if s is None else s.data.get("last_values", {}).get("error-rate")

    # Healthy traffic is read, and nothing is tightened.
    healthy = await eventually(
        status,
        lambda s: error_rate(s) is not None,
        attempts=480,
        what=f"a first error-rate reading\n{worker.output()}",
    )
    assert healthy.state == "Watching" and healthy.data["level"] == 0
    assert _rule(kube_api, namespace, "api") is None

    # Half the requests fail: one level tighter, at once, since level 1 needs no approval.
    _error_rate(kube_api, namespace, "api", "0.5")
    await eventually(
        lambda: _policy(kube_api, namespace, "api"),
        lambda policy: policy == LEVELS[1],
        attempts=480,
        what="the level 1 DestinationRule",
    )
    # Still failing: level 2 is beyond approvalAbove, so the gate holds it.
    waiting = await eventually(
        status,
        lambda s: s is not None and s.state == "AwaitingApproval",
        attempts=240,
        what="the approval gate",
    )
    assert waiting.data["target_level"] == 2
    assert "degraded: error-rate" in waiting.data["reason"]
    await asyncio.sleep(6)  # a reading later, the rule is still at level 1
    assert _policy(kube_api, namespace, "api") == LEVELS[1]

    approved = await asyncio.to_thread(
        cli, kubeconfig_path, temporal_address, MODULES, "resilience", "approve",
        f"{namespace}/api", "--as", "oncall", "-o", "json",
    )  # fmt: skip
    assert approved.returncode == 0, approved.stdout + approved.stderr
    await eventually(
        lambda: _policy(kube_api, namespace, "api"),
        lambda policy: policy == LEVELS[2],
        what="the approved level 2 DestinationRule",
    )

    # Healed: a healthy reading steps back a level at a time, and level 0 removes the rule.
    _error_rate(kube_api, namespace, "api", None)
    relaxed = await eventually(
        status,
        lambda s: s is not None and s.state == "Watching" and s.data["level"] == 0,
        attempts=480,
        what=f"back to level 0\n{worker.output()}",
    )
    assert _rule(kube_api, namespace, "api") is None
    changes = [(c["from_level"], c["to_level"]) for c in relaxed.data["changes"]]
    assert changes[:2] == [(0, 1), (1, 2)]
    assert changes[-1] == (1, 0)
    assert [c["approved_by"] for c in relaxed.data["changes"]][:2] == [None, "oncall"]
    assert all(c["reason"] for c in relaxed.data["changes"])
