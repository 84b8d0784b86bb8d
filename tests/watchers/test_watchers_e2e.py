"""End to end on the local cluster: a Canary, a new image, the real canary operator, kubectl.

Everything is real but the pods and their traffic, which the dev cluster's data-plane
simulator provides (it marks Deployments ready and emits Istio's metrics along the live
VirtualService weights).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from models.canary_watch import METRIC_SAMPLES_ANNOTATION
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
    signals,
    unique,
)

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

#: A short rollout: ten steps of 2 s (five were too few on a machine at load 13, where every
#: sample in them was still no data: Prometheus and visibility lag), a passing metric
#: sampled by the Prometheus watcher.
ANALYSIS: dict[str, Any] = {
    "interval": "2s",
    "threshold": 2,
    "stepWeight": 5,
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


def rows(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    """``kubectl get canaries -o json`` items' status."""
    listed = json.loads(kubectl(kubeconfig, "get", "canaries", "-n", namespace, "-o", "json"))
    return [item.get("status") or {} for item in listed["items"]]


async def test_a_new_image_starts_the_rollout_and_kubectl_shows_it_progress(
    cluster: Cluster,
    kube_api: client.ApiClient,
    temporal: Client,
    canary_queue: str,
    kubeconfig_path: Path,
) -> None:
    name = unique("web")
    namespace = cluster.namespace
    workflow_id = f"canary/{namespace}/{name}"
    cluster.create_deployment(deployment(name, replicas=2))
    cluster.create_canary(
        canary(name, analysis=ANALYSIS, annotations={METRIC_SAMPLES_ANNOTATION: "true"})
    )
    watch = settings(namespace, prometheus=True, sample_interval_s=1.0)
    delivery = make_delivery(temporal, canary_queue)

    async with running(watch, delivery, kube_api):
        # First the bootstrap: the primary is created from the current template.
        await eventually(
            lambda: rows(kubeconfig_path, namespace),
            lambda r: bool(r) and r[0].get("phase") == "Succeeded",
        )
        changed_at = time.monotonic()
        cluster.set_image(name, "podinfo:6.6.0")
        rollout_run = (
            await eventually(lambda: runs(temporal, workflow_id), lambda r: len(r) == 2)
        )[-1]
        started_after = time.monotonic() - changed_at
        seen: list[tuple[str, int | None]] = []

        def progress() -> dict[str, Any]:
            status = rows(kubeconfig_path, namespace)[0]
            seen.append((status.get("phase", ""), status.get("canaryWeight")))
            return status

        final = await eventually(
            progress,
            lambda s: s.get("phase") == "Succeeded" and s.get("runId") == rollout_run,
            attempts=600,
        )
        table = kubectl(kubeconfig_path, "get", "canaries", "-n", namespace)
        sent = await signals(temporal, workflow_id, rollout_run)

    print(f"\nworkflow started {started_after * 1000:.0f} ms after the image change")
    print(f"phases seen by kubectl: {sorted(set(seen), key=str)}")
    assert any(phase == "Progressing" and (weight or 0) > 0 for phase, weight in seen)
    assert final["canaryWeight"] == 0
    assert final["runId"] == rollout_run
    assert "Succeeded" in table.splitlines()[1]
    kinds = [event.type for event in sent]
    assert kinds[0] == "NewRevision"
    samples = [event for event in sent if event.type == "MetricSample"]
    assert samples, f"no MetricSample among {kinds}"
    for sample in samples:
        assert sample.payload["name"] == "request-success-rate"
        at = datetime.fromisoformat(sample.payload["at"])
        assert sample.id == f"prometheus:request-success-rate:{at:%Y-%m-%dT%H:%M:%S.%fZ}"
        assert at.timestamp() % 1 == 0  # evaluated at an interval boundary
    assert any(sample.payload["value"] is not None for sample in samples)
