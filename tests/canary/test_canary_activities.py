"""Canary workers against the real API server (Istio CRDs) with the simulated data plane."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import kube
from activities.canary import lifecycle, workloads
from activities.canary.objects import REVISION
from activities.canary.routing import IstioRouter
from models.canary import CanarySpec
from tests.canary.cluster import (
    READY_DELAY,
    app_deployment,
    create_app,
    deployment,
    new_revision,
    step_for,
    virtual_service,
    weights,
)
from tests.canary.specs import make_spec
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("canary_env")]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"


async def run(activity, spec: CanarySpec, namespace: str, state: str = "Initializing", **data):
    return await ActivityEnvironment().run(activity, step_for(spec, namespace, state, **data))


async def initialized_app(kube_api: client.ApiClient, namespace: str, name: str = "podinfo"):
    create_app(kube_api, namespace, app_deployment(name, V1))
    spec = make_spec(name)
    first = await run(lifecycle.initialize, spec, namespace)
    return spec, first


async def test_initialize_creates_the_primary_services_and_routes_from_the_users_deployment(
    kube_api, namespace
):
    _, result = await initialized_app(kube_api, namespace)

    assert result.bootstrapped and not result.needs_rollout
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert primary["metadata"]["annotations"][kube.MANAGED_BY] == "canary"
    assert primary["metadata"]["annotations"][REVISION] == result.revision
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0  # target retired

    core = client.CoreV1Api(kube_api)
    selectors = {
        svc: kube_api.sanitize_for_serialization(core.read_namespaced_service(svc, namespace))[
            "spec"
        ]["selector"]
        for svc in ("podinfo", "podinfo-primary", "podinfo-canary")
    }
    assert selectors == {
        "podinfo": {"app": "podinfo-primary"},
        "podinfo-primary": {"app": "podinfo-primary"},
        "podinfo-canary": {"app": "podinfo"},
    }
    vs = virtual_service(kube_api, namespace, "podinfo")
    assert weights(vs) == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert vs["metadata"]["annotations"][kube.MANAGED_BY] == "canary"


async def test_kubectl_shows_our_virtual_service_as_users_expect(
    kube_api, namespace, kubeconfig_path: Path
):
    await initialized_app(kube_api, namespace)
    out = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig_path),
            "-n",
            namespace,
            "get",
            "virtualservice",
            "podinfo",
            "-o",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    route = json.loads(out)["spec"]["http"][0]["route"]
    assert [(r["destination"]["host"], r["weight"]) for r in route] == [
        ("podinfo-primary", 100),
        ("podinfo-canary", 0),
    ]


async def test_a_new_image_is_a_new_revision_to_roll_out(kube_api, namespace):
    spec, first = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)

    second = await run(lifecycle.initialize, spec, namespace)

    assert second.needs_rollout and not second.bootstrapped
    assert second.revision != first.revision
    assert second.stable_revision == first.revision


async def test_start_scales_the_canary_up_and_reports_it_ready(kube_api, namespace):
    spec, _ = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)

    started = await run(lifecycle.start, spec, namespace, "Starting")

    assert started.ready, started.message
    assert started.hooks is not None and started.hooks.ok
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 2


async def test_set_weight_reconciles_from_the_live_virtual_service(kube_api, namespace):
    spec, _ = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    assert (await run(lifecycle.start, spec, namespace, "Starting")).ready
    # Someone edits the weights by hand meanwhile.
    router = IstioRouter(spec, namespace, "test")
    await router.set_routes(0, 100)

    applied = await run(lifecycle.set_weight, spec, namespace, "Progressing", canary_weight=20)

    assert (applied.previous_primary, applied.previous_canary) == (0, 100)
    assert (applied.primary, applied.canary) == (80, 20)
    vs = virtual_service(kube_api, namespace, "podinfo")
    assert weights(vs) == {"podinfo-primary": 80, "podinfo-canary": 20}


async def test_a_stale_write_gets_409_and_is_retried_on_the_fresh_object(kube_api, namespace):
    spec, _ = await initialized_app(kube_api, namespace)
    router = IstioRouter(spec, namespace, "test")
    stale = await router.get_routes()
    # Another writer changes the VirtualService after we read it (a manual timeout edit).
    fresh = virtual_service(kube_api, namespace, "podinfo")
    fresh["spec"]["http"][0]["timeout"] = "7s"
    client.CustomObjectsApi(kube_api).replace_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", "podinfo", fresh
    )

    routes = await router.set_routes(90, 10, live=stale)

    assert routes.conflicts == 1
    vs = virtual_service(kube_api, namespace, "podinfo")
    assert weights(vs) == {"podinfo-primary": 90, "podinfo-canary": 10}
    assert vs["spec"]["http"][0]["timeout"] == "7s"  # the other writer's edit survived


async def test_traffic_never_goes_to_a_canary_that_is_not_ready(kube_api, namespace, monkeypatch):
    monkeypatch.setattr(workloads, "MAX_WAIT_SECONDS", 2.0)
    spec, _ = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2, {READY_DELAY: "never"})
    await workloads.scale(namespace, "podinfo", 2)

    applied = await run(lifecycle.set_weight, spec, namespace, "Progressing", canary_weight=10)

    assert applied.held and "replicas" in applied.message
    assert weights(virtual_service(kube_api, namespace, "podinfo"))["podinfo-canary"] == 0


async def test_rollback_returns_all_traffic_and_scales_the_canary_down(kube_api, namespace):
    spec, _ = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    second = await run(lifecycle.initialize, spec, namespace)
    assert (await run(lifecycle.start, spec, namespace, "Starting")).ready
    await run(lifecycle.set_weight, spec, namespace, "Progressing", canary_weight=30)

    await run(
        lifecycle.rollback,
        spec,
        namespace,
        "RollingBack",
        revision=second.revision,
        failure="request-success-rate 48 < 99",
    )

    assert weights(virtual_service(kube_api, namespace, "podinfo")) == {
        "podinfo-primary": 100,
        "podinfo-canary": 0,
    }
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0
    again = await run(lifecycle.initialize, spec, namespace)
    assert again.rejected and "48 < 99" in (again.rejected_reason or "")
    retried = await run(lifecycle.initialize, spec, namespace, retry_of=second.revision)
    assert retried.needs_rollout and not retried.rejected


async def test_promotion_copies_the_new_template_and_keeps_the_primary_selector(
    kube_api, namespace
):
    spec, _ = await initialized_app(kube_api, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    second = await run(lifecycle.initialize, spec, namespace)

    async def promote():
        return await run(lifecycle.promote, spec, namespace, "Promoting", revision=second.revision)

    promoted = await eventually(promote, lambda p: p.ready, attempts=120)

    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert primary["metadata"]["annotations"][REVISION] == promoted.revision


async def test_a_virtual_service_we_do_not_manage_is_not_taken_over(kube_api, namespace):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        namespace,
        "virtualservices",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "podinfo"},
            "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "x"}}]}]},
        },
    )
    with pytest.raises(ApplicationError, match=r"VirtualService .*/podinfo exists and is not"):
        await run(lifecycle.initialize, make_spec(), namespace)


async def test_initialize_refuses_a_missing_target_naming_it(namespace):
    with pytest.raises(ApplicationError, match=f"Deployment {namespace}/podinfo"):
        await run(lifecycle.initialize, make_spec(), namespace)
