"""The same canary end to end through a Gateway API HTTPRoute (``provider: gatewayapi:v1``):
Temporal worker in process, real API server with the Gateway API's CRDs, real Prometheus,
simulated pods and traffic split by the HTTPRoute's backend weights."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.canary.cluster import ERROR_RATE, deployment, new_revision
from tests.canary.e2e import WeightRecorder
from tests.canary.test_canary_e2e import V1, V2, canary_spec, deployed

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: A Gateway at the edge, and the Service itself for mesh (GAMMA) routing.
AT_THE_EDGE = {"name": "public", "namespace": "istio-ingress"}
IN_THE_MESH = {"group": "", "kind": "Service", "name": "podinfo"}


class HTTPRouteWeightRecorder(WeightRecorder):
    """Watches the HTTPRoute and records every distinct weight of its canary backend."""

    GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"

    def canary_weight(self, obj: dict[str, Any]) -> int | None:
        for ref in obj["spec"]["rules"][0]["backendRefs"]:
            if ref["name"].endswith("-canary"):
                return int(ref.get("weight", 1))
        return None


def gateway_api(spec: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    """``spec`` routed with an HTTPRoute attached to ``parent``."""
    spec["provider"] = "gatewayapi:v1"
    spec["service"] = {**spec["service"], "gatewayRefs": [parent]}
    return spec


def backends(api: client.ApiClient, namespace: str) -> dict[str, int]:
    route: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", "podinfo"
    )
    return {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}


def virtual_services(api: client.ApiClient, namespace: str) -> list[Any]:
    listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices"
    )
    return list(listed["items"])


async def test_a_healthy_canary_is_promoted_through_every_http_route_weight(
    rollouts, kube_api, namespace
):
    spec = gateway_api(canary_spec(), AT_THE_EDGE)
    await deployed(rollouts, kube_api, namespace, spec)

    with HTTPRouteWeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        status = await handle.result()

    assert status.state == "Succeeded", status.data
    assert recorder.canary_weights == [0, 10, 20, 30, 40, 50, 0]
    assert status.data["applied_weights"] == [0, 10, 20, 30, 40, 50, 0]
    assert backends(kube_api, namespace) == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert virtual_services(kube_api, namespace) == []
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0
    assert status.data["failed_checks"] == 0


async def test_a_canary_failing_half_its_requests_in_the_mesh_is_rolled_back(
    rollouts, kube_api, namespace
):
    spec = gateway_api(canary_spec(threshold=2), IN_THE_MESH)
    await deployed(rollouts, kube_api, namespace, spec)

    with HTTPRouteWeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2, {ERROR_RATE: "0.5"})
        handle = await rollouts.start(namespace, "podinfo", spec)
        status = await rollouts.wait_for(handle, "Failed")

    assert recorder.canary_weights[-1] == 0 and max(recorder.canary_weights) <= 20
    assert backends(kube_api, namespace) == {"podinfo-primary": 100, "podinfo-canary": 0}
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    data = status.data
    assert data["failed_checks"] == 2 and data["outcome"] == "rolled back"
    [metric] = data["failed_metrics"]
    assert metric["name"] == "request-success-rate" and 30 < metric["value"] < 70
