"""`autopilot canary start`, then `watch`, `status` and `approve`, on the local cluster.

The canary runs for real: a worker in this process, the cluster's Temporal, kube-apiserver
and Prometheus; pods and Envoy traffic come from the data-plane simulator. Intervals are
2 s and every wait is functional (a command's exit, or state polling).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.revisions import pod_template_revision
from tests.canary.cluster import ERROR_RATE, app_deployment, create_app, deployment, new_revision
from tests.canary.conftest import canary_env, rollouts  # noqa: F401 - fixtures used here
from tests.canary.specs import spec_dict

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"
V3 = "ghcr.io/stefanprodan/podinfo:6.5.2"
#: A 6 s window at 10 % of the simulator's 10 requests a second holds about 6 requests.
SUCCESS_RATE = {
    "name": "request-success-rate",
    "thresholdRange": {"min": 99},
    "interval": "6s",
    "minSampleCount": 3,
}


def manifest(namespace: str, **analysis: Any) -> dict[str, Any]:
    """A Canary manifest as a user writes it."""
    spec = spec_dict("podinfo", interval="2s", threshold=2, metrics=[SUCCESS_RATE], **analysis)
    return {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": spec,
    }


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def shown(autopilot, env: dict[str, str], text: str, namespace: str) -> str:
    """`status` once it shows ``text`` (a functional wait: the machine moves on its own)."""
    output = ""
    for _ in range(100):
        output = (await autopilot("status", "-n", namespace, "podinfo", env=env)).stdout
        if text in output:
            return output
        await asyncio.sleep(0.2)
    raise AssertionError(f"status never showed {text!r}:\n{output}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the spec is checked before anything happens -------------------------------------------


async def test_an_invalid_spec_file_exits_2_naming_the_field(autopilot, tmp_path):
    document = manifest("shop")
    document["spec"]["analysis"]["stepWeight"] = 0
    document["spec"]["analysis"]["metrics"][0]["thresholdRange"] = {}
    path = write(tmp_path, document)

    result = await autopilot("canary", "start", "podinfo", "-n", "shop", "-f", str(path))
    assert result.exit_code == 2
    assert f"invalid canary spec in {path}" in result.stderr
    assert "spec.analysis.stepWeight: Input should be greater than or equal to 1" in result.stderr
    assert "spec.analysis.metrics[0].thresholdRange: set min, max or both" in result.stderr
    assert "Traceback" not in result.output


async def test_a_spec_for_another_deployment_or_namespace_exits_2(autopilot, tmp_path):
    path = write(tmp_path, manifest("shop"))
    other = await autopilot("canary", "start", "web", "-n", "shop", "-f", str(path))
    assert other.exit_code == 2
    assert "spec.targetRef.name: the spec rolls out 'podinfo', not Deployment 'web'" in (
        other.stderr
    )
    elsewhere = await autopilot("canary", "start", "podinfo", "-n", "prod", "-f", str(path))
    assert elsewhere.exit_code == 2
    assert "metadata.namespace" in elsewhere.stderr


async def test_a_missing_spec_file_exits_2(autopilot, tmp_path):
    result = await autopilot("canary", "start", "podinfo", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


@pytest.mark.temporal
async def test_an_unreachable_kubernetes_exits_6(autopilot, temporal_env, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    port = closed_port()
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    path = write(tmp_path, manifest("shop"))
    env = {**temporal_env, "KUBECONFIG": str(kubeconfig)}

    result = await autopilot("canary", "start", "podinfo", "-f", str(path), env=env)
    assert result.exit_code == 6, result.output
    assert f"cannot reach Kubernetes at https://127.0.0.1:{port}" in result.stderr
    assert "autopilot dev up" in result.stderr


# -- on the local cluster ------------------------------------------------------------------


@pytest.fixture
def cluster_cli(rollouts, kubeconfig_path, temporal_address) -> dict[str, str]:  # noqa: F811
    """Environment pointing the CLI at the cluster, and the test worker's task queue."""
    return {
        "KUBECONFIG": str(kubeconfig_path),
        "TEMPORAL_ADDRESS": temporal_address,
        "AUTOPILOT_TEMPORAL_TASK_QUEUE": rollouts.task_queue,
    }


@pytest.mark.cluster
@pytest.mark.temporal
async def test_canary_start_with_an_image_rolls_it_out_and_watch_exits_0(
    autopilot, cluster_cli, kube_api, namespace, tmp_path
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    path = write(tmp_path, manifest(namespace))
    workflow = f"canary/{namespace}/podinfo"

    first = await autopilot("canary", "start", "podinfo", "-f", str(path), env=cluster_cli)
    assert first.exit_code == 0, first.output
    assert f"started {workflow}" in first.stdout
    bootstrap = await autopilot("watch", workflow, env=cluster_cli)
    assert bootstrap.exit_code == 0, bootstrap.output  # the primary was created from v1

    rollout = await autopilot(
        "canary", "start", "podinfo", "-n", namespace, "--image", V2, env=cluster_cli
    )
    assert rollout.exit_code == 0, rollout.output
    assert f"set image {V2} on Deployment {namespace}/podinfo" in rollout.stdout
    assert "with the spec of its previous run" in rollout.stdout

    watched = await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)
    assert watched.exit_code == 0, watched.output
    assert "Promoting" in watched.stdout and "succeeded" in watched.stdout
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2

    status = json.loads(
        (
            await autopilot("status", "-n", namespace, "podinfo", "-o", "json", env=cluster_cli)
        ).stdout
    )
    assert status["state"] == "Succeeded" and status["data"]["outcome"] == "promoted"
    assert status["data"]["applied_weights"] == [0, 10, 20, 30, 40, 50, 0]
    metrics = status["data"]["last_analysis"]["metrics"]
    assert metrics[0]["name"] == "request-success-rate" and metrics[0]["status"] == "pass"

    table = (await autopilot("status", workflow, env=cluster_cli)).stdout
    assert "request-success-rate" in table and "≥ 99" in table
    assert "0% canary, 100% primary" in table


@pytest.mark.cluster
@pytest.mark.temporal
async def test_a_faulty_revision_is_rolled_back_and_watch_exits_1(
    autopilot, cluster_cli, kube_api, namespace, tmp_path
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    path = write(tmp_path, manifest(namespace))
    await autopilot("canary", "start", "podinfo", "-f", str(path), env=cluster_cli)
    assert (await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)).exit_code == 0

    new_revision(kube_api, namespace, "podinfo", V3, {ERROR_RATE: "0.5"})
    started = await autopilot("canary", "start", "podinfo", "-n", namespace, env=cluster_cli)
    assert started.exit_code == 0, started.output

    watched = await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)
    assert watched.exit_code == 1, watched.output
    assert "RollingBack" in watched.stdout and "failed" in watched.stdout
    assert "request-success-rate" in watched.stdout  # why it failed


@pytest.mark.cluster
@pytest.mark.temporal
async def test_a_promotion_gate_waits_for_approve_and_a_new_image_restarts_the_rollout(
    autopilot, cluster_cli, kube_api, namespace, tmp_path
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    path = write(tmp_path, manifest(namespace, gates={"beforePromotion": True}))
    await autopilot("canary", "start", "podinfo", "-f", str(path), env=cluster_cli)
    assert (await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)).exit_code == 0
    start = ["canary", "start", "podinfo", "-n", namespace, "--image"]

    await autopilot(*start, V2, env=cluster_cli)
    gate = await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)
    assert gate.exit_code == 3, gate.output
    # The gate re-runs its analysis every interval (AwaitingPromotion ⇄ Analysing).
    status = await shown(autopilot, cluster_cli, "gate before promotion: waiting for", namespace)
    assert f"autopilot approve canary/{namespace}/podinfo" in status

    again = await autopilot(*start, V2, env=cluster_cli)
    assert again.exit_code == 0, again.output
    assert "already rolls out revision" in again.stdout and "nothing to send" in again.stdout

    newer = await autopilot(*start, V3, env=cluster_cli)
    assert newer.exit_code == 0, newer.output
    assert f"sent the new revision to canary/{namespace}/podinfo" in newer.stdout
    gate = await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)
    assert gate.exit_code == 3, gate.output

    approved = await autopilot(
        "approve", "-n", namespace, "podinfo", "--as", "rm", "--reason", "ok", env=cluster_cli
    )
    assert approved.exit_code == 0, approved.output
    assert "approve accepted from rm" in approved.stdout
    done = await autopilot("watch", "-n", namespace, "podinfo", env=cluster_cli)
    assert done.exit_code == 0, done.output
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V3


@pytest.mark.cluster
@pytest.mark.temporal
async def test_canary_start_for_a_missing_deployment_exits_4(
    autopilot, cluster_cli, namespace, tmp_path
):
    path = write(tmp_path, manifest(namespace))
    result = await autopilot("canary", "start", "podinfo", "-f", str(path), env=cluster_cli)
    assert result.exit_code == 4
    assert f"no Deployment {namespace}/podinfo" in result.stderr


@pytest.mark.cluster
@pytest.mark.temporal
async def test_canary_start_tells_the_temporal_ui_what_it_rolls_out_and_who_started_it(
    autopilot,
    cluster_cli,
    rollouts,  # noqa: F811
    kube_api,
    namespace,
    tmp_path,
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    path = write(tmp_path, manifest(namespace))
    env = {**cluster_cli, "AUTOPILOT_TEMPORAL_IDENTITY": "carol"}
    await autopilot("canary", "start", "podinfo", "-f", str(path), env=env)
    assert (await autopilot("watch", "-n", namespace, "podinfo", env=env)).exit_code == 0
    stable = revision_of(kube_api, namespace)

    started = await autopilot("canary", "start", "podinfo", "-n", namespace, "--image", V2, env=env)
    assert started.exit_code == 0, started.output
    described = await rollouts.client.get_workflow_handle(f"canary/{namespace}/podinfo").describe()

    revision = revision_of(kube_api, namespace)
    summary = await described.static_summary()
    assert summary == f"canary {namespace}/podinfo: {revision} over {stable}"
    details = await described.static_details() or ""
    assert f"revision `{revision}` over `{stable}`" in details
    assert "started by carol (autopilot canary start)" in details
    assert "on `NewRevision` `cli:" in details


def revision_of(api, namespace: str) -> str:
    live = deployment(api, namespace, "podinfo")
    return pod_template_revision(live["spec"]["template"])
