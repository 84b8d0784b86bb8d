"""A rollout's story in ``kubectl describe canary`` and ``kubectl events``: the real kubectl.

A Canary (named apart from its Deployment, as users may), the watchers and the real canary
operator on the local cluster; the new revision fails half its requests, so the rollout
steps, fails its checks and rolls back. Every step, verdict and the rollback must be an
Event on the Canary, and the repeated verdict one Event counted twice, not two Events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from tests.canary.cluster import ERROR_RATE, new_revision
from tests.canary.histories import record_if_asked
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    kubectl,
    make_delivery,
    running,
    runs,
    settings,
    unique,
)

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

#: Two failed checks roll back; the canary's half-failing requests fail every check.
ANALYSIS: dict[str, Any] = {
    "interval": "2s",
    "threshold": 2,
    "stepWeight": 10,
    "maxWeight": 30,
    "metrics": [
        {
            "name": "request-success-rate",
            "thresholdRange": {"min": 99},
            "interval": "6s",
            "minSampleCount": 3,
        }
    ],
}


def phase(kubeconfig: Path, namespace: str, name: str) -> str:
    shown = json.loads(kubectl(kubeconfig, "get", "canary", name, "-n", namespace, "-o", "json"))
    return str((shown.get("status") or {}).get("phase") or "")


def events_of(kubeconfig: Path, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events about the Canary ``name``, as ``kubectl get events -o json`` lists them."""
    listed = json.loads(kubectl(kubeconfig, "get", "events", "-n", namespace, "-o", "json"))
    return [
        e
        for e in listed["items"]
        if (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == ("Canary", name)
    ]


async def test_kubectl_describe_canary_tells_the_steps_the_verdicts_and_the_rollback(
    cluster: Cluster,
    kube_api: client.ApiClient,
    temporal: Client,
    canary_queue: str,
    kubeconfig_path: Path,
) -> None:
    app, name = unique("web"), unique("rollout")
    namespace = cluster.namespace
    workflow_id = f"canary/{namespace}/{app}"
    cluster.create_deployment(deployment(app))
    cluster.create_canary(canary(name, target=app, analysis=ANALYSIS))

    async with running(settings(namespace), make_delivery(temporal, canary_queue), kube_api):
        await eventually(lambda: phase(kubeconfig_path, namespace, name), "Succeeded".__eq__)
        new_revision(kube_api, namespace, app, "podinfo:6.6.0", {ERROR_RATE: "0.5"})
        await eventually(lambda: runs(temporal, workflow_id), lambda r: len(r) == 2)
        await eventually(
            lambda: phase(kubeconfig_path, namespace, name), "Failed".__eq__, attempts=600
        )
        rollout_run = (await runs(temporal, workflow_id))[-1]
        rollout = temporal.get_workflow_handle(workflow_id, run_id=rollout_run)
        await eventually(
            lambda: [e["reason"] for e in events_of(kubeconfig_path, namespace, name)],
            lambda reasons: "RolledBack" in reasons,
        )
    await record_if_asked(rollout, "canary_rolled_back_with_events")
    described = await rollout.describe()
    summary = await described.static_summary() or ""
    assert summary.startswith(f"canary {namespace}/{app}: ") and " over " in summary

    shown = kubectl(kubeconfig_path, "describe", "canary", name, "-n", namespace)
    story = shown[shown.index("Events:") :]
    for reason in (
        "Initialized",
        "RolloutStarted",
        "WeightChanged",
        "AnalysisFailed",
        "RolledBack",
    ):
        assert reason in story, f"{reason} missing from:\n{story}"
    assert "canary weight 0 -> 10" in story
    assert "request-success-rate" in story and "min 99" in story  # the value vs its threshold
    listed = kubectl(kubeconfig_path, "events", "-n", namespace, "--for", f"canary/{name}")
    for reason in ("WeightChanged", "AnalysisFailed", "RolledBack"):
        assert reason in listed, f"{reason} missing from:\n{listed}"

    events = events_of(kubeconfig_path, namespace, name)
    [failed] = [e for e in events if e["reason"] == "AnalysisFailed"]
    assert failed["count"] == 2 and failed["type"] == "Warning"  # one Event, counted twice
    assert "(2/2 failed checks)" in failed["message"]
    assert "(x2 over" in story
    assert all(e["involvedObject"]["uid"] for e in events)
    everything = json.loads(
        kubectl(kubeconfig_path, "get", "events", "-n", namespace, "-o", "json")
    )
    ours = [e for e in everything["items"] if e["source"].get("component") == "autopilot-canary"]
    assert len(ours) == len(events)  # none on the Deployment: the Canary has them all
