"""Real Flux applies what is in git: a push lands, a change lands, a removal is pruned, and the
documented excludes keep Flux from reverting what Autopilot changes at runtime.

Everything here is real: Flux's source-controller and kustomize-controller built from their
release modules, the local kube-apiserver with Istio's CRDs, and git's own ``http-backend``
serving the repository. Nothing waits for a fixed time: each step waits until the
Kustomization reports the pushed commit as applied (``status.lastAppliedRevision``).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from devcluster.cluster import FLUX_PARTS, DevCluster
from devcluster.flux import expected_crd_names
from tests.fixtures.flux import ConfigRepo, FluxApply, FluxSync
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.flux]

#: The field manager Autopilot's activities write with.
AUTOPILOT_MANAGER = "autopilot"

ISTIO_NETWORKING = ("networking.istio.io", "v1")
ISTIO_SECURITY = ("security.istio.io", "v1")


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deny_policy(name: str) -> dict[str, Any]:
    """An AuthorizationPolicy isolating workload ``name``, as a quarantine records it in git."""
    return {
        "apiVersion": "/".join(ISTIO_SECURITY),
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"quarantine-{name}"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "action": "DENY",
            "rules": [{}],
        },
    }


def policy_names(api: client.ApiClient, namespace: str) -> list[str]:
    found: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        *ISTIO_SECURITY, namespace, "authorizationpolicies"
    )
    return sorted(item["metadata"]["name"] for item in found["items"])


def deployment(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment as a GitOps repository should hold it: no ``spec.replicas`` (runtime)."""
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**selector, **(labels or {})}},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": name, "image": f"shop/{name}:1.0"}]},
            },
        },
    }


def virtual_service(name: str, *, runtime_weights: bool) -> dict[str, Any]:
    """A VirtualService sending everything to the primary.

    With ``runtime_weights`` it carries ``kustomize.toolkit.fluxcd.io/ssa: IfNotPresent``:
    Flux creates it when it is missing and never updates it after, so the weights Autopilot
    sets are left alone.
    """
    annotations = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"} if runtime_weights else {}
    return {
        "apiVersion": "/".join(ISTIO_NETWORKING),
        "kind": "VirtualService",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"hosts": [name], "http": [{"route": routes(100, 0, host="checkout")}]},
    }


def routes(primary: int, canary: int, *, host: str) -> list[dict[str, Any]]:
    return [
        {"destination": {"host": f"{host}-primary"}, "weight": primary},
        {"destination": {"host": f"{host}-canary"}, "weight": canary},
    ]


def weights(api: client.ApiClient, namespace: str, name: str) -> list[int]:
    vs: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        *ISTIO_NETWORKING, namespace, "virtualservices", name
    )
    return [int(route["weight"]) for route in vs["spec"]["http"][0]["route"]]


def set_weights_as_autopilot(
    api: client.ApiClient, namespace: str, name: str, primary: int, canary: int
) -> None:
    """Shift traffic the way Autopilot's activities do: a patch under Autopilot's manager."""
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *ISTIO_NETWORKING,
        namespace,
        "virtualservices",
        name,
        {"spec": {"http": [{"route": routes(primary, canary, host="checkout")}]}},
        field_manager=AUTOPILOT_MANAGER,
    )


def configmap_data(api: client.ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """The ConfigMap's data, or None when it does not exist."""
    try:
        found = client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(found.data or {})


async def test_manifests_pushed_to_git_are_applied_a_change_too_and_their_removal_prunes_them(
    flux_sync: FluxSync, config_repo: ConfigRepo, kube_api: client.ApiClient
) -> None:
    repo, namespace = config_repo, flux_sync.namespace

    repo.write("settings.yaml", configmap("gitops-settings", {"mode": "direct"}))
    repo.write("quarantine.yaml", deny_policy("payments"))
    await flux_sync.applied(repo.push("add the settings; quarantine payments"))
    assert configmap_data(kube_api, namespace, "gitops-settings") == {"mode": "direct"}
    assert policy_names(kube_api, namespace) == ["quarantine-payments"]

    repo.write("settings.yaml", configmap("gitops-settings", {"mode": "pull-request"}))
    await flux_sync.applied(repo.push("settings: pull requests"))
    assert configmap_data(kube_api, namespace, "gitops-settings") == {"mode": "pull-request"}

    repo.remove("settings.yaml")
    repo.remove("quarantine.yaml")
    await flux_sync.applied(repo.push("remove the settings; release payments"))
    await eventually(
        lambda: (
            configmap_data(kube_api, namespace, "gitops-settings"),
            policy_names(kube_api, namespace),
        ),
        lambda found: found == (None, []),
        what="Flux pruning the ConfigMap and the AuthorizationPolicy removed from git",
    )


async def test_flux_applies_only_the_directory_its_kustomization_names(
    flux_apply: FluxApply, config_repo: ConfigRepo, namespace: str, kube_api: client.ApiClient
) -> None:
    config_repo.write("clusters/dev/settings.yaml", configmap("dev-settings", {"env": "dev"}))
    config_repo.write("clusters/prod/settings.yaml", configmap("prod-settings", {"env": "prod"}))
    sha = config_repo.push("settings for dev and prod")

    await flux_apply(config_repo.url, path="clusters/dev").applied(sha)

    assert configmap_data(kube_api, namespace, "dev-settings") == {"env": "dev"}
    assert configmap_data(kube_api, namespace, "prod-settings") is None


async def test_flux_keeps_runtime_weights_and_replicas_only_where_git_leaves_them_out(
    flux_sync: FluxSync, config_repo: ConfigRepo, kube_api: client.ApiClient
) -> None:
    repo, namespace = config_repo, flux_sync.namespace
    apps = client.AppsV1Api(kube_api)
    repo.write("checkout.yaml", deployment("checkout"))
    repo.write("vs-runtime.yaml", virtual_service("checkout", runtime_weights=True))
    repo.write("vs-plain.yaml", virtual_service("checkout-plain", runtime_weights=False))
    await flux_sync.applied(repo.push("checkout: deployment and routes"))
    assert weights(kube_api, namespace, "checkout") == [100, 0]

    # At runtime Autopilot shifts traffic to the canary and the Deployment is scaled.
    set_weights_as_autopilot(kube_api, namespace, "checkout", 90, 10)
    set_weights_as_autopilot(kube_api, namespace, "checkout-plain", 90, 10)
    apps.patch_namespaced_deployment_scale(
        "checkout", namespace, {"spec": {"replicas": 3}}, field_manager=AUTOPILOT_MANAGER
    )

    # Flux applies the next commit (and corrects drift while doing it).
    repo.write("checkout.yaml", deployment("checkout", labels={"team": "payments"}))
    await flux_sync.applied(repo.push("checkout: owned by payments"))

    live: Any = apps.read_namespaced_deployment("checkout", namespace)
    assert live.metadata.labels["team"] == "payments"  # the commit was applied
    assert live.spec.replicas == 3  # not in git: the runtime value stays
    assert weights(kube_api, namespace, "checkout") == [90, 10]  # ssa: IfNotPresent
    assert weights(kube_api, namespace, "checkout-plain") == [100, 0]  # reverted to git's


def test_dev_status_lists_flux_crds_and_both_controllers_running(flux_cluster: DevCluster) -> None:
    statuses = {part.name: part for part in flux_cluster.status()}

    assert [statuses[name].state for name in FLUX_PARTS] == ["running"] * len(FLUX_PARTS)
    assert statuses[FLUX_PARTS[0]].detail == f"{len(expected_crd_names())} Established"
