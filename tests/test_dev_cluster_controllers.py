"""The local cluster's real controllers: the deployment controller, the scheduler, kwok's
nodes and the garbage collector do their jobs, so only traffic and metrics are simulated."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.cluster import CONTROLLER_MANAGER, KWOK, SCHEDULER, DevCluster
from devcluster.controllers import (
    NODE_PREFIX,
    READY_DELAY_ANNOTATION,
    kwok_stages,
    with_ready_delay,
)


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} never happened; last value: {value!r}")


def deployment(
    name: str, replicas: int, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    }


def pods_of(kube_api: client.ApiClient, namespace: str, app: str) -> list[Any]:
    return list(
        client.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    )


@pytest.mark.cluster
def test_the_controller_manager_the_scheduler_and_kwok_report_healthy(
    dev_cluster: DevCluster,
) -> None:
    states = {part.name: part.state for part in dev_cluster.status()}

    assert {name: states.get(name) for name in (CONTROLLER_MANAGER, SCHEDULER, KWOK)} == {
        CONTROLLER_MANAGER: "running",
        SCHEDULER: "running",
        KWOK: "running",
    }


@pytest.mark.cluster
def test_a_deployment_gets_running_pods_on_kwok_nodes_and_its_status_from_the_controller(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", 2))

    status = wait_for(
        lambda: (
            (d := apps.read_namespaced_deployment("web", namespace)).status.ready_replicas == 2
            and d.status
        ),
        "two ready replicas",
    )
    pods = pods_of(kube_api, namespace, "web")

    assert status.observed_generation == 1
    assert [p.status.phase for p in pods] == ["Running", "Running"]
    assert all(p.spec.node_name.startswith(NODE_PREFIX) for p in pods)
    replica_sets = apps.list_namespaced_replica_set(namespace).items
    assert [rs.metadata.owner_references[0].name for rs in replica_sets] == ["web"]
    progressing = {c.type: c.reason for c in status.conditions}["Progressing"]
    assert progressing == "NewReplicaSetAvailable"


@pytest.mark.cluster
def test_a_new_template_rolls_out_through_a_second_replica_set(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", 1))
    wait_for(lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas, "v1")

    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "example/app:2"}]}}}
    }
    apps.patch_namespaced_deployment("web", namespace, patch)

    def rolled_out() -> bool:
        d = apps.read_namespaced_deployment("web", namespace)
        return (
            d.status.observed_generation == 2
            and d.status.updated_replicas == 1
            and d.status.ready_replicas == 1
            and (d.status.replicas or 0) == 1
        )

    wait_for(rolled_out, "the second template rolled out")
    sets = {
        rs.spec.template.spec.containers[0].image: rs.spec.replicas
        for rs in apps.list_namespaced_replica_set(namespace).items
    }
    assert sets == {"example/app:1": 0, "example/app:2": 1}


@pytest.mark.cluster
def test_a_pod_template_that_is_never_ready_keeps_its_pods_pending(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        namespace, deployment("stuck", 1, {READY_DELAY_ANNOTATION: "never"})
    )
    apps.create_namespaced_deployment(namespace, deployment("fine", 1))

    wait_for(
        lambda: apps.read_namespaced_deployment("fine", namespace).status.ready_replicas, "fine"
    )
    pods = wait_for(lambda: pods_of(kube_api, namespace, "stuck"), "the stuck pod")

    assert pods[0].spec.node_name  # scheduled, but kwok does not make it ready
    assert pods[0].status.phase == "Pending"
    assert not apps.read_namespaced_deployment("stuck", namespace).status.ready_replicas


@pytest.mark.cluster
def test_the_garbage_collector_removes_what_a_deleted_deployment_owned(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps: Any = client.AppsV1Api(kube_api)
    core: Any = client.CoreV1Api(kube_api)
    owner = apps.create_namespaced_deployment(namespace, deployment("web", 1))
    reference = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "web-owned", "ownerReferences": [reference]}}
    )
    wait_for(lambda: pods_of(kube_api, namespace, "web"), "a pod")

    apps.delete_namespaced_deployment("web", namespace)

    def gone() -> bool:
        names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        return "web-owned" not in names and not pods_of(kube_api, namespace, "web")

    wait_for(gone, "the owned ConfigMap, the ReplicaSet's pods removed")


@pytest.mark.cluster
def test_a_deleted_namespace_is_emptied_and_goes(kube_api: client.ApiClient) -> None:
    core: Any = client.CoreV1Api(kube_api)
    body: Any = {"metadata": {"name": "doomed-ns"}}
    core.create_namespace(body)
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment("doomed-ns", deployment("web", 1))

    core.delete_namespace("doomed-ns")

    wait_for(
        lambda: (
            "doomed-ns"
            not in {(n.metadata.name if n.metadata else "") for n in core.list_namespace().items}
        ),
        "the namespace gone",
        timeout=120,
    )


def test_pod_ready_waits_for_the_templates_ready_delay_and_never_means_never() -> None:
    stage: dict[str, Any] = {
        "metadata": {"name": "pod-ready"},
        "spec": {"selector": {"matchExpressions": [{"key": ".status.phase"}]}},
    }

    changed = with_ready_delay(stage)

    expressions = changed["spec"]["selector"]["matchExpressions"]
    assert expressions[-1]["operator"] == "NotIn" and expressions[-1]["values"] == ["never"]
    assert READY_DELAY_ANNOTATION in changed["spec"]["delay"]["durationFrom"]["expressionFrom"]
    assert stage["spec"]["selector"]["matchExpressions"] == [{"key": ".status.phase"}]
    assert with_ready_delay({"metadata": {"name": "pod-delete"}}) == {
        "metadata": {"name": "pod-delete"}
    }


def test_kwok_stages_are_read_from_its_module_and_a_missing_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "kustomize/stage/node/fast").mkdir(parents=True)
    (tmp_path / "kustomize/stage/node/fast/node-initialize.yaml").write_text(
        yaml.safe_dump({"kind": "Stage", "metadata": {"name": "node-initialize"}})
    )

    with pytest.raises(Exception, match=r"node-heartbeat\.yaml"):
        kwok_stages(tmp_path)
