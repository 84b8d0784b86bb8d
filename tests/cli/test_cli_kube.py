"""``canary start --image`` sets the image the way ``kubectl set image`` would, race or not.

The Deployment's status changes all the time (the deployment controller, here the data-plane
simulator, writes it while pods start), and once made ``--image`` fail at random because
the patch was guarded by the ``resourceVersion`` it had read. These tests slip a real write
in between the CLI's read and its patch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from cli import kube
from cli.errors import CliError
from tests.canary.cluster import app_deployment, create_app, deployment, new_revision

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"

pytestmark = pytest.mark.cluster


def write_after_each_read(
    monkeypatch: pytest.MonkeyPatch, write: Callable[[int], None]
) -> list[int]:
    """Make every read of the Deployment be followed by ``write(n)``, before the patch."""
    reads: list[int] = []
    read = kube.read_deployment

    def read_then_write(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
        found = read(api, namespace, name)
        reads.append(len(reads))
        write(len(reads))
        return found

    monkeypatch.setattr(kube, "read_deployment", read_then_write)
    return reads


def image_of(kube_api: client.ApiClient, namespace: str) -> str:
    found = deployment(kube_api, namespace, "podinfo")
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_status_update_between_read_and_patch_does_not_stop_the_new_image(
    kube_api, namespace, monkeypatch
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    apps = client.AppsV1Api(kube_api)

    def controller_writes_status(n: int) -> None:
        status: Any = {"status": {"observedGeneration": 1, "replicas": n, "updatedReplicas": n}}
        apps.patch_namespaced_deployment_status("podinfo", namespace, status)

    reads = write_after_each_read(monkeypatch, controller_writes_status)

    updated = kube.set_image(kube_api, namespace, "podinfo", V2)

    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert image_of(kube_api, namespace) == V2
    assert len(reads) == 1  # no retry was needed


def test_an_image_changed_by_someone_else_meanwhile_is_read_again_then_set(
    kube_api, namespace, monkeypatch
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))

    def someone_sets_an_image_once(n: int) -> None:
        if n == 1:
            new_revision(kube_api, namespace, "podinfo", "other:1")

    reads = write_after_each_read(monkeypatch, someone_sets_an_image_once)

    kube.set_image(kube_api, namespace, "podinfo", V2)

    assert image_of(kube_api, namespace) == V2
    assert len(reads) == 2


def test_an_image_that_keeps_changing_is_refused_with_a_hint_to_run_again(
    kube_api, namespace, monkeypatch
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))

    def someone_keeps_setting_images(n: int) -> None:
        new_revision(kube_api, namespace, "podinfo", f"other:{n}")

    reads = write_after_each_read(monkeypatch, someone_keeps_setting_images)

    with pytest.raises(CliError) as refused:
        kube.set_image(kube_api, namespace, "podinfo", V2)

    assert (
        refused.value.message
        == f"Deployment {namespace}/podinfo changed while it was being updated"
    )
    assert refused.value.hint == "run the command again"
    assert len(reads) == kube.SET_IMAGE_ATTEMPTS
    assert image_of(kube_api, namespace) == f"other:{kube.SET_IMAGE_ATTEMPTS}"


def test_an_invalid_image_is_refused_with_the_api_servers_reason(kube_api, namespace):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))

    with pytest.raises(CliError) as refused:
        kube.set_image(kube_api, namespace, "podinfo", "")

    assert "Kubernetes refused to change Deployment" in refused.value.message
    assert "image" in refused.value.message
