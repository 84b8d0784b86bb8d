"""What the canary generates belongs to the user's Deployment: the real garbage collector
removes it with that Deployment, and the aborted run still ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client
from temporalio.testing import ActivityEnvironment

from activities.canary import lifecycle
from models.canary import CanarySpec
from tests.canary.cluster import app_deployment, create_app, new_revision, step_for
from tests.canary.e2e import Rollouts
from tests.canary.specs import make_spec, spec_dict
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"

#: (kind, name) of every object a canary of ``podinfo`` generates on Istio.
GENERATED = [
    ("Deployment", "podinfo-primary"),
    ("Service", "podinfo"),
    ("Service", "podinfo-primary"),
    ("Service", "podinfo-canary"),
    ("DestinationRule", "podinfo-primary"),
    ("DestinationRule", "podinfo-canary"),
    ("VirtualService", "podinfo"),
]


def read(api: client.ApiClient, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    """The live object as JSON, or None when it is gone."""
    try:
        if kind == "Deployment":
            live: Any = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
        elif kind == "Service":
            live = client.CoreV1Api(api).read_namespaced_service(name, namespace)
        else:
            plural = f"{kind.lower()}s"
            live = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "networking.istio.io", "v1", namespace, plural, name
            )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    result: dict[str, Any] = api.sanitize_for_serialization(live)
    return result


def delete_routes(api: client.ApiClient, namespace: str) -> None:
    """Remove the VirtualService and both DestinationRules, as a hand or a collector would."""
    for kind, name in GENERATED:
        if kind in ("VirtualService", "DestinationRule"):
            client.CustomObjectsApi(api).delete_namespaced_custom_object(
                "networking.istio.io", "v1", namespace, f"{kind.lower()}s", name
            )


async def initialized(api: client.ApiClient, namespace: str) -> tuple[CanarySpec, str]:
    """The app at V1 after the canary's first initialize; returns the spec and the uid."""
    create_app(api, namespace, app_deployment("podinfo", V1))
    spec = make_spec("podinfo")
    await ActivityEnvironment().run(lifecycle.initialize, step_for(spec, namespace))
    apps: Any = client.AppsV1Api(api)
    return spec, str(apps.read_namespaced_deployment("podinfo", namespace).metadata.uid)


async def set_weight(spec: CanarySpec, namespace: str, weight: int) -> Any:
    step = step_for(spec, namespace, "Progressing", canary_weight=weight)
    return await ActivityEnvironment().run(lifecycle.set_weight, step)


async def bootstrapped(rollouts: Rollouts, api: client.ApiClient, namespace: str) -> str:
    """The app at V1 through a first canary run; returns the Deployment's uid."""
    create_app(api, namespace, app_deployment("podinfo", V1))
    status = await (await rollouts.start(namespace, "podinfo", spec_dict())).result()
    assert status.state == "Succeeded", status.data
    apps: Any = client.AppsV1Api(api)
    return str(apps.read_namespaced_deployment("podinfo", namespace).metadata.uid)


async def test_every_generated_object_is_owned_by_the_users_deployment(
    rollouts, kube_api, namespace
):
    uid = await bootstrapped(rollouts, kube_api, namespace)

    owners = {
        (kind, name): (read(kube_api, namespace, kind, name) or {})["metadata"].get(
            "ownerReferences"
        )
        for kind, name in GENERATED
    }

    expected = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo", "uid": uid}]
    assert owners == {key: expected for key in GENERATED}


async def test_deleting_the_deployment_mid_rollout_aborts_and_the_collector_removes_the_rest(
    rollouts, kube_api, namespace
):
    await bootstrapped(rollouts, kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec_dict(interval="30s"))
    await rollouts.wait_for(handle, "Progressing", "Analysing", "AwaitingStep")

    client.AppsV1Api(kube_api).delete_namespaced_deployment("podinfo", namespace)
    await eventually(
        lambda: [key for key in GENERATED if read(kube_api, namespace, *key)],
        lambda left: not left,
        what="the generated objects removed by the garbage collector",
    )
    await rollouts.signal(handle, "TargetDeleted", "deleted-1", reason="deleted")
    status = await asyncio.wait_for(handle.result(), timeout=120)

    assert status.state == "Aborted", status.data


@pytest.mark.usefixtures("canary_env")
async def test_routes_removed_by_hand_come_back_owned_by_the_users_deployment(kube_api, namespace):
    spec, uid = await initialized(kube_api, namespace)
    delete_routes(kube_api, namespace)

    await set_weight(spec, namespace, 0)

    expected = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo", "uid": uid}]
    owners = {
        (kind, name): (read(kube_api, namespace, kind, name) or {})["metadata"].get(
            "ownerReferences"
        )
        for kind, name in GENERATED
        if kind in ("VirtualService", "DestinationRule")
    }
    assert owners == {key: expected for key in owners}


@pytest.mark.usefixtures("canary_env")
async def test_a_step_after_the_deployment_went_does_not_bring_back_routes_nobody_owns(
    kube_api, namespace
):
    spec, _ = await initialized(kube_api, namespace)
    client.AppsV1Api(kube_api).delete_namespaced_deployment("podinfo", namespace)
    await eventually(
        lambda: [key for key in GENERATED if read(kube_api, namespace, *key)],
        lambda left: not left,
        what="the generated objects removed by the garbage collector",
    )

    with pytest.raises(client.ApiException) as refused:
        await set_weight(spec, namespace, 10)

    assert refused.value.status == 404
    assert [key for key in GENERATED if read(kube_api, namespace, *key)] == []
