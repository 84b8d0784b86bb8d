"""The Kubernetes watcher against the real API server and the real Temporal server.

The workflows it starts here are the stand-in (``tests/watchers/standin.py``), so each test
can read exactly what was signalled: the workflow's input and its history.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines
from temporalio.client import Client

from devcluster.cluster import DevCluster
from models.canary_watch import CANARY_FINALIZER
from models.operator import OperatorInput
from models.revisions import pod_template_revision
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    running,
    settings,
    signals,
    unique,
)
from watchers.kube.checkpoint import KEY_PREFIX

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]


def revision_of(cluster: Cluster, name: str) -> str:
    live = cluster.api.sanitize_for_serialization(
        cluster.apps.read_namespaced_deployment(name, cluster.namespace)
    )
    return pod_template_revision(live["spec"]["template"])


async def started_input(temporal: Client, workflow_id: str) -> OperatorInput:
    handle = temporal.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events():
        attributes = event.workflow_execution_started_event_attributes
        payloads = await temporal.data_converter.decode(attributes.input.payloads, [OperatorInput])
        return payloads[0]
    raise AssertionError("no history")


def types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


async def test_applying_a_canary_starts_its_workflow_with_the_spec_and_the_revision(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    applied = canary(name)
    cluster.create_canary(applied)
    workflow_id = f"canary/{cluster.namespace}/{name}"

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 1)
        started = await started_input(temporal, workflow_id)
        status = await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("observedRevision") is not None,
        )

    assert types(sent) == ["NewRevision"]
    assert sent[0].payload["revision"] == revision_of(cluster, name)
    assert started.spec == applied["spec"]
    assert (started.target.namespace, started.target.name) == (cluster.namespace, name)
    assert status["workflowId"] == workflow_id
    assert CANARY_FINALIZER in (cluster.get_canary(name) or {})["metadata"]["finalizers"]


async def test_a_new_image_signals_a_new_revision_and_scaling_signals_nothing(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    cluster.create_canary(canary(name))
    workflow_id = f"canary/{cluster.namespace}/{name}"

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) == 1)
        cluster.scale(name, 3)
        cluster.set_image(name, "podinfo:6.6.0")
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 2)
        await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}).get("observedRevision"),
            lambda revision: revision == revision_of(cluster, name),
        )

    assert types(sent) == ["NewRevision", "NewRevision"]
    assert sent[1].payload["revision"] == revision_of(cluster, name)
    assert sent[0].payload["revision"] != sent[1].payload["revision"]


async def test_deleting_the_canary_aborts_its_workflow_then_lets_the_canary_go(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    created = cluster.create_canary(canary(name))
    workflow_id = f"canary/{cluster.namespace}/{name}"

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) == 1)
        cluster.delete_canary(name)
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 2)
        await eventually(lambda: cluster.get_canary(name), lambda found: found is None)

    assert types(sent) == ["NewRevision", "TargetDeleted"]
    assert sent[1].id == f"k8s:canary/{created['metadata']['uid']}:deleted"


async def test_deleting_the_deployment_aborts_its_workflow(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    cluster.create_canary(canary(name))
    workflow_id = f"canary/{cluster.namespace}/{name}"

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) == 1)
        cluster.delete_deployment(name)
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 2)
        status = await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("targetUid") is None,
        )

    assert types(sent) == ["NewRevision", "TargetDeleted"]
    assert sent[1].payload == {"reason": f"Deployment {cluster.namespace}/{name} deleted"}
    assert name in status["message"]  # "not found", then "waiting for Deployment"


async def test_a_spec_the_model_refuses_is_shown_in_status_and_starts_nothing(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    cluster.create_canary(canary(name, analysis={"stepWeight": 60, "maxWeight": 50}))

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        status = await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("phase") == "Invalid",
        )

    assert "stepWeight 60 is above maxWeight 50" in status["message"]
    assert status.get("workflowId") is None


async def test_a_restarted_watcher_resumes_from_its_checkpoint_and_delivers_what_it_missed(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name, quiet = unique(), unique("quiet")
    for app in (name, quiet):
        cluster.create_deployment(deployment(app))
        cluster.create_canary(canary(app))
    workflow_id = f"canary/{cluster.namespace}/{name}"
    quiet_id = f"canary/{cluster.namespace}/{quiet}"
    delivery = make_delivery(temporal, standin_queue)
    stream = f"{KEY_PREFIX}deployments.{cluster.namespace}"

    async with running(settings(cluster.namespace), delivery, kube_api):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) == 1)
        await eventually(lambda: signals(temporal, quiet_id), lambda s: len(s) == 1)
    saved = cluster.checkpoint()
    cluster.set_image(name, "podinfo:7.0.0")  # while no watcher runs

    async with running(settings(cluster.namespace), delivery, kube_api) as runner:
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 2)
        assert runner.current is not None and runner.current.kube is not None
        watcher = runner.current.kube
        await eventually(lambda: watcher.stats.reconciles, lambda n: n >= 2)
        informers = {informer.name: informer for informer in watcher._informers}

    assert stream in saved
    assert informers[f"deployments.{cluster.namespace}"].lists == 0  # resumed, not listed
    assert types(sent) == ["NewRevision", "NewRevision"]
    assert sent[1].payload["revision"] == revision_of(cluster, name)
    assert types(await signals(temporal, quiet_id)) == ["NewRevision"]  # nothing replayed


def history_is_gone(cluster: Cluster, version: str) -> bool:
    """Whether the API server answers a watch from ``version`` with 410 Gone."""
    response: Any = cluster.apps.list_namespaced_deployment(
        cluster.namespace,
        watch=True,
        resource_version=version,
        timeout_seconds=1,
        _preload_content=False,
    )
    try:
        for line in iter_resp_lines(response):
            event = json.loads(line) if line else {}
            if event.get("type") == "ERROR":
                return int(event["object"].get("code", 0)) == 410
    finally:
        response.release_conn()
    return False


def restart_api_server(dev_cluster: DevCluster) -> None:
    """SIGKILL kube-apiserver and start it again, as a crash or an upgrade does.

    The restarted server's watch cache begins at etcd's current revision, so a
    resourceVersion from before the restart is "too old" (410 Gone) at once. Without a
    restart that takes a full cache whose oldest event is older than its freshness window
    (75 s of churn), which is what a watcher away for minutes on a busy cluster meets.
    """
    assert dev_cluster.kill("kube-apiserver")
    dev_cluster.up()


async def test_a_checkpoint_the_server_no_longer_has_is_answered_by_a_fresh_list(
    cluster: Cluster,
    dev_cluster: DevCluster,
    kube_api: client.ApiClient,
    temporal: Client,
    standin_queue: str,
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    cluster.create_canary(canary(name))
    workflow_id = f"canary/{cluster.namespace}/{name}"
    delivery = make_delivery(temporal, standin_queue)
    key = f"{KEY_PREFIX}deployments.{cluster.namespace}"
    async with running(settings(cluster.namespace), delivery, kube_api):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) == 1)
        await eventually(lambda: cluster.checkpoint().get(key))
    cluster.set_image(name, "podinfo:7.0.0")  # while no watcher runs
    await asyncio.to_thread(restart_api_server, dev_cluster)
    assert await asyncio.to_thread(history_is_gone, cluster, cluster.checkpoint()[key])

    async with running(settings(cluster.namespace), delivery, kube_api) as runner:
        sent = await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 2)
        assert runner.current is not None and runner.current.kube is not None
        informer = next(i for i in runner.current.kube._informers if i.name.startswith("deploy"))

    assert informer.gone >= 1 and informer.lists >= 1
    assert types(sent) == ["NewRevision", "NewRevision"]
    assert sent[1].payload["revision"] == revision_of(cluster, name)


async def test_a_workflow_the_watcher_starts_says_in_the_temporal_ui_what_and_who(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    name = unique()
    cluster.create_deployment(deployment(name))
    cluster.create_canary(canary(name))
    workflow_id = f"canary/{cluster.namespace}/{name}"

    async with running(
        settings(cluster.namespace), make_delivery(temporal, standin_queue), kube_api
    ):
        await eventually(lambda: signals(temporal, workflow_id), lambda s: len(s) >= 1)
    described = await temporal.get_workflow_handle(workflow_id).describe()

    revision = revision_of(cluster, name)
    assert await described.static_summary() == f"canary {cluster.namespace}/{name}: {revision}"
    details = await described.static_details() or ""
    assert f"**canary** Deployment `{cluster.namespace}/{name}`" in details
    assert f"revision `{revision}`" in details
    assert f"started by kubernetes (Temporal client `{temporal.identity}`)" in details
    assert "on `NewRevision` `k8s:canary/" in details
