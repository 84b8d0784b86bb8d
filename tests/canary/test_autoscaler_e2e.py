"""``spec.autoscalerRef`` end to end: the primary's HPA as the real API server stores it.

The local cluster's controller manager runs no HPA controller (there is no metrics API), so
no HPA ever scales anything here: these tests check the objects Autopilot writes (what
``kubectl get hpa`` shows), which is all Autopilot does with them.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.canary.cluster import app_deployment, create_app, deployment, new_revision
from tests.canary.e2e import Rollouts
from tests.canary.specs import spec_dict

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"


def cpu(utilization: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": utilization},
            },
        }
    ]


def user_hpa(name: str, *, low: int = 2, high: int = 4, utilization: int = 70) -> dict[str, Any]:
    """The user's HPA of their Deployment, as they would write it."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": cpu(utilization),
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
    }


def hpa(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    live = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(name, namespace)
    result: dict[str, Any] = api.sanitize_for_serialization(live)
    return result


def event_messages(api: client.ApiClient, namespace: str, reason: str) -> list[str]:
    """The messages of the Events with ``reason`` (on the Deployment: there is no Canary)."""
    listed = client.CoreV1Api(api).list_namespaced_event(namespace)
    return [str(e.message) for e in listed.items if e.reason == reason]


def hpa_spec(**autoscaler: Any) -> dict[str, Any]:
    spec = spec_dict("podinfo", interval="1s", stepWeight=50, maxWeight=50)
    spec["autoscalerRef"] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "podinfo",
        **autoscaler,
    }
    return spec


async def bootstrapped(
    rollouts: Rollouts, api: client.ApiClient, namespace: str, spec: dict[str, Any]
) -> None:
    """The app at V1 with its HPA, through a first canary run (nothing to roll out)."""
    create_app(api, namespace, app_deployment("podinfo", V1))
    body: Any = user_hpa("podinfo")
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(namespace, body)
    status = await (await rollouts.start(namespace, "podinfo", spec)).result()
    assert status.state == "Succeeded" and status.data["outcome"] == "initialized", status.data


async def test_the_primary_gets_its_own_hpa_derived_from_the_users(rollouts, kube_api, namespace):
    await bootstrapped(rollouts, kube_api, namespace, hpa_spec())

    users = hpa(kube_api, namespace, "podinfo")
    primarys = hpa(kube_api, namespace, "podinfo-primary")
    assert primarys["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo-primary",
    }
    assert (primarys["spec"]["minReplicas"], primarys["spec"]["maxReplicas"]) == (2, 4)
    assert primarys["spec"]["metrics"] == users["spec"]["metrics"] == cpu(70)
    assert primarys["spec"]["behavior"] == users["spec"]["behavior"]
    assert users["spec"]["scaleTargetRef"]["name"] == "podinfo"  # the user's is left alone
    meta = primarys["metadata"]
    assert meta["annotations"]["autopilot.dev/managed-by"] == "canary"
    assert meta["annotations"]["autopilot.dev/workflow"] == f"canary/{namespace}/podinfo"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "autopilot"
    primary = deployment(kube_api, namespace, "podinfo-primary")
    uid = primary["metadata"]["uid"]
    assert meta["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary", "uid": uid}
    ]
    assert event_messages(kube_api, namespace, "AutoscalerCreated") == [
        "HorizontalPodAutoscaler podinfo-primary created from podinfo: 2 to 4 replicas of "
        "podinfo-primary"
    ]


async def test_primary_scaler_replicas_bound_the_primarys_hpa_instead(
    rollouts, kube_api, namespace
):
    spec = hpa_spec(primaryScalerReplicas={"minReplicas": 3, "maxReplicas": 8})
    await bootstrapped(rollouts, kube_api, namespace, spec)

    primarys = hpa(kube_api, namespace, "podinfo-primary")["spec"]
    assert (primarys["minReplicas"], primarys["maxReplicas"]) == (3, 8)
    assert primarys["metrics"] == cpu(70)


async def test_a_change_to_the_users_hpa_reaches_the_primarys_when_a_revision_is_promoted(
    rollouts, kube_api, namespace
):
    spec = hpa_spec()
    await bootstrapped(rollouts, kube_api, namespace, spec)
    changed: Any = {"spec": {"maxReplicas": 6, "metrics": cpu(50)}}
    autoscaling = client.AutoscalingV2Api(kube_api)
    autoscaling.patch_namespaced_horizontal_pod_autoscaler("podinfo", namespace, changed)

    new_revision(kube_api, namespace, "podinfo", V2)
    status = await (await rollouts.start(namespace, "podinfo", spec)).result()

    assert status.state == "Succeeded" and status.data["outcome"] == "promoted", status.data
    primarys = hpa(kube_api, namespace, "podinfo-primary")["spec"]
    assert (primarys["minReplicas"], primarys["maxReplicas"]) == (2, 6)
    assert primarys["metrics"] == cpu(50)
    assert primarys["scaleTargetRef"]["name"] == "podinfo-primary"
    [updated] = event_messages(kube_api, namespace, "AutoscalerUpdated")
    assert updated.startswith(
        "HorizontalPodAutoscaler podinfo-primary updated from podinfo: 2 to 6"
    )


async def test_deleting_the_target_leaves_the_primarys_hpa_with_the_primary(
    rollouts, kube_api, namespace
):
    spec = hpa_spec()
    await bootstrapped(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)
    await rollouts.wait_for(handle, "Progressing", "Analysing", "AwaitingStep")

    await rollouts.signal(handle, "TargetDeleted", "deleted-1", reason="Canary deleted")
    status = await handle.result()

    assert status.state == "Aborted", status.data
    primarys = hpa(kube_api, namespace, "podinfo-primary")
    assert primarys["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert primarys["metadata"]["ownerReferences"][0]["name"] == "podinfo-primary"


async def test_a_missing_hpa_fails_the_canary_naming_autoscaler_ref(rollouts, kube_api, namespace):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))

    status = await rollouts.wait_for(
        await rollouts.start(namespace, "podinfo", hpa_spec()), "Failed"
    )

    assert "spec.autoscalerRef" in status.data["failure"], status.data
    assert f"HorizontalPodAutoscaler {namespace}/podinfo" in status.data["failure"]
