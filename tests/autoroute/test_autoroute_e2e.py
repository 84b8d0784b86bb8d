"""The autoroute operator end to end on the local cluster, in direct mode.

Real: kube-apiserver with Istio's CRDs, Temporal, Prometheus, the worker process (operators,
watchers, webhook server), git. Simulated: the data plane (the simulator makes Deployments
ready and sends requests through every VirtualService, reported as Istio's metrics). Fake:
GitHub's REST API and webhooks. What a platform engineer would check is checked: the
VirtualService, the workflow's status, and that traffic reached the Service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devcluster.github_fake.server import FakeGitHub
from models.operator import OperatorStatus
from service.temporal import connect
from tests.autoroute.cluster import (
    TOKEN,
    autoroute_worker,
    check_in,
    create_backend,
    create_service,
    redeliver,
    route,
    routes,
    service_manifest,
    webhooks_ready,
)
from tests.framework.processes import WorkerProcess, cli, status_of
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", repository="shop/apps", token=TOKEN) as fake:
        fake.seed({"README.md": "the shop's services\n"})
        yield fake


@pytest.fixture
def worker(
    github: FakeGitHub,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    prometheus_url: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[WorkerProcess]:
    from devcluster.crds import install_autopilot_crds

    install_autopilot_crds(kube_api)
    with autoroute_worker(
        github=github,
        kubeconfig=kubeconfig_path,
        temporal_address=temporal_address,
        prometheus_url=prometheus_url,
        namespace=namespace,
        log=tmp_path / "worker.log",
    ) as running:
        yield running


async def until(
    temporal: Any, workflow_id: str, state: str, worker: WorkerProcess
) -> OperatorStatus:
    found: OperatorStatus = await eventually(
        lambda: status_of(temporal, workflow_id),
        lambda s: s is not None and s.state == state,
        attempts=600,
        what=f"{workflow_id} in {state}\n{worker.output()[-4000:]}",
    )
    return found


async def test_a_service_pushed_to_git_gets_one_verified_route_and_loses_it_when_removed(
    worker: WorkerProcess,
    github: FakeGitHub,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    workflow_id = f"autoroute/{namespace}/cart"
    manifest = service_manifest(namespace, "cart", f"{namespace}.shop.example.com/cart")
    create_backend(kube_api, namespace, "cart")

    # A developer pushes the annotated Service; the push webhook starts its route.
    await webhooks_ready(worker)
    await asyncio.to_thread(check_in, github, f"services/{namespace}/cart.yaml", manifest)
    # Once the push has started it (on a loaded machine the cluster's watch could win the
    # race, and the route would say so), the application's deploy puts the Service in the
    # cluster: the other trigger.
    await eventually(
        lambda: status_of(temporal, workflow_id),
        lambda s: s is not None,
        attempts=600,
        what=f"{workflow_id} started by the push\n{worker.output()[-4000:]}",
    )
    create_service(kube_api, manifest)
    routed = await until(temporal, workflow_id, "Routed", worker)

    vs = route(kube_api, namespace, "cart-route")
    assert vs is not None
    assert vs["spec"]["hosts"] == [f"{namespace}.shop.example.com"]
    assert vs["spec"]["gateways"] == ["istio-system/ingressgateway"]
    http = vs["spec"]["http"][0]
    assert http["match"] == [{"uri": {"prefix": "/cart"}}]
    assert http["route"][0]["destination"]["host"] == f"cart.{namespace}.svc.cluster.local"
    assert routed.data["verified"] is True
    assert "requests/s" in routed.data["verification"]
    assert routed.data["requested_by"].startswith("git shop/apps@")

    # The push redelivered, and the cluster trigger seen again: one workflow, one route.
    push = next(d for d in github.deliveries if d.event == "push")
    assert await asyncio.to_thread(redeliver, push, f"http://127.0.0.1:{worker.port}/v1/github")
    await asyncio.sleep(3)
    again = await status_of(temporal, workflow_id)
    assert again is not None and again.state == "Routed"
    assert routes(kube_api, namespace) == ["cart-route"]
    listed = [w async for w in temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len({w.run_id for w in listed}) == 1

    # autopilot status shows host, path and the verification.
    shown = await asyncio.to_thread(
        cli, kubeconfig_path, temporal_address, "workflows.autoroute",
        "status", workflow_id,
    )  # fmt: skip
    assert f"{namespace}.shop.example.com" in shown.stdout + shown.stderr

    # Removing the Service's file in git removes the route.
    await asyncio.to_thread(check_in, github, f"services/{namespace}/cart.yaml", None)
    removed = await until(temporal, workflow_id, "Removed", worker)
    assert route(kube_api, namespace, "cart-route") is None
    assert "removed" in removed.data["removal"]


async def test_a_second_service_claiming_the_same_host_and_path_ends_in_conflict(
    worker: WorkerProcess,
    kube_api: client.ApiClient,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    host = f"{namespace}.shop.example.com/cart"
    create_backend(kube_api, namespace, "cart")
    create_service(kube_api, service_manifest(namespace, "cart", host))
    await until(temporal, f"autoroute/{namespace}/cart", "Routed", worker)
    first = route(kube_api, namespace, "cart-route")
    assert first is not None

    create_service(kube_api, service_manifest(namespace, "cart-v2", host))
    conflict = await until(temporal, f"autoroute/{namespace}/cart-v2", "Conflict", worker)

    message = conflict.data["conflict"]
    assert f"VirtualService {namespace}/cart-route" in message
    assert f"Service {namespace}/cart-v2 is not routed" in message
    assert f"cart.{namespace}" in message  # where the first route goes
    assert routes(kube_api, namespace) == ["cart-route"]
    after = route(kube_api, namespace, "cart-route")
    assert after is not None and after["spec"] == first["spec"]
    assert after["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
