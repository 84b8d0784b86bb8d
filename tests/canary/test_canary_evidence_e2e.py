"""A verdict needs evidence: with the simulator's rate turned down, a window holds too few
requests to judge, so a faulty canary gets no pass; its metric's noData policy decides.

On the local cluster (real API server, Prometheus and Temporal, simulated traffic); intervals
are seconds and every wait is functional."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.canary.cluster import ERROR_RATE, new_revision
from tests.canary.e2e import Rollouts, WeightRecorder
from tests.canary.specs import spec_dict
from tests.canary.test_canary_e2e import V2, deployed

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: The simulator's annotation of the requests a second sent through a VirtualService.
RATE = "sim.autopilot.dev/rate"


def quiet_service(api: client.ApiClient, namespace: str, name: str, rate: str) -> None:
    """Turn the simulated client's rate down (the VirtualService keeps its annotations)."""
    patch: Any = {"metadata": {"annotations": {RATE: rate}}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", name, patch
    )


def spec(**metric: Any) -> dict[str, Any]:
    success_rate = {
        "name": "request-success-rate",
        "thresholdRange": {"min": 99},
        "interval": "20s",
        **metric,
    }
    # Steps of 8 s: the first analysis sees a few requests, not a window with none at all.
    return spec_dict(
        "podinfo", interval="8s", threshold=1, noDataHoldIntervals=1, metrics=[success_rate]
    )


@pytest.mark.parametrize("policy", ["hold", "fail"])
async def test_a_faulty_canary_with_too_few_requests_gets_no_pass_and_its_policy_decides(
    rollouts: Rollouts, kube_api, namespace, policy
):
    wanted = spec(noData=policy)  # minSampleCount: its default, 20 requests in the window
    await deployed(rollouts, kube_api, namespace, wanted)
    # 5 requests a second, 10 % to the canary: about 10 in a 20 s window.
    quiet_service(kube_api, namespace, "podinfo", "5")

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2, {ERROR_RATE: "0.5"})
        handle = await rollouts.start(namespace, "podinfo", wanted)
        status = await rollouts.wait_for(handle, "Failed")

    assert recorder.canary_weights == [0, 10, 0]  # never a step past the first
    data = status.data
    # hold: one held interval, then the failure; fail: the first analysis fails.
    assert data["iterations"] == (2 if policy == "hold" else 1)
    [metric] = data["last_analysis"]["metrics"]
    assert metric["status"] == "no_data" and metric["min_samples"] == 20, metric
    assert metric["samples"] is not None and metric["samples"] < 20, metric["message"]
    assert "below minSampleCount 20" in data["failure"]
