"""The statistical judge on the local cluster: a canary 40 % slower than its primary, under
every absolute threshold, is failed by the judge and promoted without it.

Real API server, Prometheus and Temporal; the simulator's latency annotation slows the
canary. Every wait is functional (state polling)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.canary.cluster import new_revision
from tests.canary.e2e import Rollouts
from tests.canary.specs import spec_dict
from tests.canary.test_canary_e2e import V2, deployed
from tests.canary.test_canary_evidence_e2e import quiet_service as set_rate

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: The simulator's mean request duration of a workload, in milliseconds (default 10).
LATENCY = "sim.autopilot.dev/latency-ms"
#: Both built-in metrics, far from their thresholds for either version (p99 about 23 and 32).
METRICS = [
    {
        "name": "request-success-rate",
        "thresholdRange": {"min": 99},
        "interval": "6s",
        "minSampleCount": 3,
    },
    {
        "name": "request-duration",
        "thresholdRange": {"max": 500},
        "interval": "6s",
        "minSampleCount": 3,
    },
]


#: Requests a second: a p99 needs a few slow requests in every window of the canary at 10 %.
BUSY = "100"


def spec(**analysis: Any) -> dict[str, Any]:
    return spec_dict(
        "podinfo", interval="4s", threshold=1, maxWeight=20, metrics=METRICS, **analysis
    )


async def test_a_canary_40_percent_slower_is_passed_without_the_judge(
    rollouts: Rollouts, kube_api, namespace
):
    await deployed(rollouts, kube_api, namespace, spec())
    set_rate(kube_api, namespace, "podinfo", BUSY)
    new_revision(kube_api, namespace, "podinfo", V2, {LATENCY: "14"})

    status = await (await rollouts.start(namespace, "podinfo", spec())).result()

    assert status.state == "Succeeded", status.data  # every threshold holds


async def test_the_same_canary_is_failed_by_the_judge(rollouts: Rollouts, kube_api, namespace):
    judged = spec(judge={})
    await deployed(rollouts, kube_api, namespace, judged)
    set_rate(kube_api, namespace, "podinfo", BUSY)
    new_revision(kube_api, namespace, "podinfo", V2, {LATENCY: "14"})

    handle = await rollouts.start(namespace, "podinfo", judged)
    status = await rollouts.wait_for(handle, "Failed")

    verdict = status.data["last_analysis"]["judge"]
    assert verdict["verdict"] == "Fail", [m["message"] for m in verdict["metrics"]]
    duration = next(m for m in verdict["metrics"] if m["name"] == "request-duration")
    assert duration["classification"] == "High" and duration["ratio"] > 1.1
    assert duration["p_value"] < 0.05
    success = next(m for m in verdict["metrics"] if m["name"] == "request-success-rate")
    assert success["classification"] == "Pass"
    assert all(m["status"] == "pass" for m in status.data["last_analysis"]["metrics"])
    assert "judge Fail" in status.data["failure"]
    assert "request-duration High" in status.data["failure"]


async def test_a_canary_equal_to_its_primary_is_passed_by_the_judge(
    rollouts: Rollouts, kube_api, namespace
):
    judged = spec(judge={})
    await deployed(rollouts, kube_api, namespace, judged)
    new_revision(kube_api, namespace, "podinfo", V2)

    status = await (await rollouts.start(namespace, "podinfo", judged)).result()

    assert status.state == "Succeeded", status.data
    assert status.data["last_analysis"]["judge"]["verdict"] == "Pass"
