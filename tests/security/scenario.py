"""The end-to-end run whose API requests are measured: canaries, a quarantine, the watchers.

The real worker process (worker and watchers, with leader election) runs as the operators'
ServiceAccount; in the watched namespace a healthy Canary (with an HPA) is promoted, a faulty
one rolled back, and an Alertmanager alert quarantines a workload that an Approval object
then releases. Then the worker stops (so its watches end) and the audit log holds what it
asked of the API server.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kubernetes import client
from temporalio.client import Client

from devcluster.kubeconfig import ServiceAccountIdentity
from models.approvals import APPROVAL_GROUP, APPROVAL_PLURAL, APPROVAL_VERSION
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from models.operator import OperatorStatus
from tests.canary.cluster import ERROR_RATE, new_revision
from tests.canary.test_autoscaler_e2e import user_hpa
from tests.framework.processes import WorkerProcess, post, status_of, worker_process
from tests.quarantine.alerts import alert, notification
from tests.quarantine.cluster import create_app
from tests.waiting import eventually
from tests.watchers.support import canary, deployment
from tests.watchers.test_canary_events_e2e import ANALYSIS as FAULTY

#: The Alertmanager webhook's token in this run.
ALERTMANAGER_TOKEN = "least-privilege-test-token"

#: A short rollout that passes: two steps of 2 s, no data counted as a pass.
HEALTHY: dict[str, Any] = {
    "interval": "2s",
    "threshold": 2,
    "stepWeight": 25,
    "maxWeight": 50,
    "metrics": [
        {
            "name": "request-success-rate",
            "interval": "30s",
            "thresholdRange": {"min": 0},
            "noData": "pass",
        }
    ],
}


def phase(api: client.ApiClient, namespace: str, name: str) -> str:
    """The Canary's ``status.phase``."""
    found: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, name
    )
    return str((found.get("status") or {}).get("phase") or "")


def post_alert(worker: WorkerProcess, namespace: str, name: str) -> int:
    """Alertmanager's notification of a firing alert on ``name``, to the worker's webhook."""
    body = notification(alert(namespace, name)).model_dump_json(by_alias=True).encode()
    return post(
        worker.port, "/v1/alertmanager", body, {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}
    )


async def canary_promoted_and_rolled_back(
    admin: client.ApiClient, namespace: str, worker: WorkerProcess
) -> None:
    """A healthy Canary promoted and a faulty one rolled back, side by side."""
    custom = client.CustomObjectsApi(admin)
    apps = client.AppsV1Api(admin)
    hpa: Any = user_hpa("good")  # the healthy one scales with an HPA (autoscalerRef)
    client.AutoscalingV2Api(admin).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    for name, analysis in (("good", HEALTHY), ("bad", FAULTY)):
        body: Any = deployment(name)
        apps.create_namespaced_deployment(namespace, body)
        resource = canary(name, analysis=analysis)
        if name == "good":
            resource["spec"]["autoscalerRef"] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "good",
            }
        custom.create_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, resource
        )

    async def ended(name: str, expected: str, what: str) -> None:
        final = await eventually(
            lambda: phase(admin, namespace, name),
            lambda shown: shown in ("Succeeded", "Failed"),
            attempts=960,
            what=what,
        )
        assert final == expected, f"{what}: {final}\n{worker.output()[-3000:]}"

    for name in ("good", "bad"):
        await ended(name, "Succeeded", f"{name}'s bootstrap")
    new_revision(admin, namespace, "good", "podinfo:6.6.0")
    new_revision(admin, namespace, "bad", "podinfo:6.6.0", {ERROR_RATE: "0.5"})
    await eventually(lambda: phase(admin, namespace, "good"), "Progressing".__eq__, attempts=480)
    await ended("good", "Succeeded", "good promoted")
    await ended("bad", "Failed", "bad rolled back")


async def quarantined_and_released(
    admin: client.ApiClient, temporal: Client, namespace: str, worker: WorkerProcess
) -> None:
    """An alert isolates ``suspect``; an on-call person releases it."""
    create_app(admin, namespace, "suspect")
    assert await eventually(
        lambda: asyncio.to_thread(post_alert, worker, namespace, "suspect"),
        lambda code: code != 0,
        what="the webhook server",
    ) in (200, 202)
    workflow_id = f"quarantine/{namespace}/suspect"

    async def state() -> str | None:
        status = await status_of(temporal, workflow_id)
        return None if status is None else status.state

    await eventually(state, "Isolated".__eq__, attempts=480, what="the quarantine")
    # The on-call person releases it as a Kubernetes object, which the watchers hand on.
    approval: Any = {
        "apiVersion": f"{APPROVAL_GROUP}/{APPROVAL_VERSION}",
        "kind": "Approval",
        "metadata": {"name": "release-suspect"},
        "spec": {
            "operator": "quarantine",
            "target": "suspect",
            "command": "release",
            "reason": "false positive",
        },
    }
    client.CustomObjectsApi(admin).create_namespaced_custom_object(
        APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, approval
    )
    handle = temporal.get_workflow_handle(workflow_id, result_type=OperatorStatus)
    assert (await handle.result()).state == "Released"

    def approval_phase() -> str | None:
        found: Any = client.CustomObjectsApi(admin).get_namespaced_custom_object(
            APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, "release-suspect"
        )
        return (found.get("status") or {}).get("phase")

    await eventually(approval_phase, "Applied".__eq__, what="the Approval's status")


async def run_scenario(
    *,
    admin: client.ApiClient,
    identity: ServiceAccountIdentity,
    temporal: Client,
    temporal_address: str,
    prometheus_url: str,
    namespace: str,
    workdir: Path,
    quarantine: bool = True,
) -> None:
    """Run everything as ``identity``, watching ``namespace``."""
    kubeconfig = identity.write(workdir / "operators.kubeconfig")
    with worker_process(
        modules="",
        kubeconfig=kubeconfig,
        temporal_address=temporal_address,
        prometheus_url=prometheus_url,
        namespace=namespace,
        log=workdir / "worker.log",
        extra_env={
            "AUTOPILOT_WATCH_LEADER_ELECTION": "true",
            "AUTOPILOT_WEBHOOK_ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN,
            "AUTOPILOT_WATCH_NAMESPACES": json.dumps([namespace]),
        },
    ) as worker:
        rollouts = [canary_promoted_and_rolled_back(admin, namespace, worker)]
        if quarantine:
            rollouts.append(quarantined_and_released(admin, temporal, namespace, worker))
        await asyncio.gather(*rollouts)
