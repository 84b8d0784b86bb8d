"""The autoroute operator in pull-request mode, end to end with real Flux and the FAKE GitHub.

One repository holds the application's Service (``services/``) and the cluster's
configuration (``clusters/dev``, applied by Flux's source- and kustomize-controller). A pushed
Service asking for ``pull-request`` mode gets a pull request writing its VirtualService; only
after its merge does Flux apply it, and only then is the route verified by traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from devcluster.cluster import DevCluster
from devcluster.github_fake.server import FakeGitHub
from service.temporal import connect
from tests.autoroute.cluster import (
    TOKEN,
    autoroute_worker,
    check_in,
    create_backend,
    create_service,
    route,
    service_manifest,
    webhooks_ready,
)
from tests.autoroute.test_autoroute_e2e import until
from tests.fixtures.flux import KUSTOMIZE_API, SOURCE_API, git_repository, kustomization
from tests.framework.processes import WorkerProcess

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.flux]

PATH = "clusters/dev"


@pytest.fixture
def github(tmp_path: Path, namespace: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", repository="shop/apps", token=TOKEN) as fake:
        seed = {"apiVersion": "v1", "kind": "ConfigMap"}
        seed["metadata"] = {"name": "seed", "namespace": namespace}  # type: ignore[assignment]
        fake.seed({f"{PATH}/{namespace}/configmap-seed.yaml": yaml.safe_dump(seed)})
        yield fake


@pytest.fixture
def worker(
    flux_cluster: DevCluster,
    github: FakeGitHub,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    temporal_address: str,
    prometheus_url: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[WorkerProcess]:
    from devcluster.crds import install_autopilot_crds

    del flux_cluster
    install_autopilot_crds(kube_api)
    objects = client.CustomObjectsApi(kube_api)
    objects.create_namespaced_custom_object(
        *SOURCE_API, namespace, "gitrepositories", git_repository("config", github.clone_url)
    )
    objects.create_namespaced_custom_object(
        *KUSTOMIZE_API,
        namespace,
        "kustomizations",
        kustomization("config", "config", namespace, path=f"./{PATH}"),
    )
    with autoroute_worker(
        github=github,
        kubeconfig=kubeconfig_path,
        temporal_address=temporal_address,
        prometheus_url=prometheus_url,
        namespace=namespace,
        log=tmp_path / "worker.log",
        AUTOPILOT_GITOPS_REPOSITORY=github.repository,
        AUTOPILOT_GITOPS_PATH=PATH,
        AUTOPILOT_GITOPS_POLL_INTERVAL_S="2",
    ) as running:
        yield running
    for plural, api in (("kustomizations", KUSTOMIZE_API), ("gitrepositories", SOURCE_API)):
        objects.delete_namespaced_custom_object(*api, namespace, plural, "config")


async def test_a_pushed_service_in_pull_request_mode_is_routed_only_after_flux_applies_the_merge(
    worker: WorkerProcess,
    github: FakeGitHub,
    kube_api: client.ApiClient,
    temporal_address: str,
    namespace: str,
) -> None:
    temporal = await connect(temporal_address)
    workflow_id = f"autoroute/{namespace}/cart"
    manifest = service_manifest(
        namespace,
        "cart",
        f"{namespace}.shop.example.com/cart",
        **{"autopilot.dev/route-mode": "pull-request"},
    )
    create_backend(kube_api, namespace, "cart")
    await webhooks_ready(worker)
    await asyncio.to_thread(check_in, github, f"services/{namespace}/cart.yaml", manifest)
    create_service(kube_api, manifest)

    review = await until(temporal, workflow_id, "InReview", worker)
    assert route(kube_api, namespace, "cart-route") is None  # nothing before the merge
    assert len(github.pulls()) == 1
    number = review.data["pr"]
    assert github.file_at(
        github.pull(number).head, f"{PATH}/{namespace}/virtualservice-cart-route.yaml"
    )

    github.merge(number, by="ada")
    routed = await until(temporal, workflow_id, "Routed", worker)
    vs = route(kube_api, namespace, "cart-route")
    assert vs is not None
    assert any(k.startswith("kustomize.toolkit.fluxcd.io/") for k in vs["metadata"]["labels"])
    assert routed.data["verified"] is True
    assert routed.data["pr_state"] == "merged"
    assert len(github.pulls()) == 1  # both triggers, one pull request
