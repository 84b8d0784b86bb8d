"""Flagger's ``service`` fields for the generated objects: the Services' custom metadata
(``apex``, ``primary``, ``canary``), offline and on the local cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities import kube
from activities.canary import lifecycle
from cli.errors import Exit
from cli.main import app
from models.canary import CanarySpec, CanarySpecError, load_canary_spec
from tests.canary.cluster import app_deployment, create_app, step_for
from tests.canary.specs import spec_dict

MANIFESTS = Path(__file__).parent / "manifests"
V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"


def lint(manifest: Path) -> Any:
    return CliRunner().invoke(app, ["lint", str(manifest)], catch_exceptions=False)


def problems_of(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(CanarySpecError) as caught:
        load_canary_spec(spec)
    return caught.value.problems


def with_service(**service: Any) -> dict[str, Any]:
    spec = spec_dict()
    spec["service"].update(service)
    return spec


# --- custom metadata, offline ---------------------------------------------------------


def test_flaggers_manifest_with_service_metadata_passes_lint_unchanged() -> None:
    result = lint(MANIFESTS / "flagger-service-metadata.yaml")

    assert result.exit_code == Exit.OK, result.output


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"labels": {"team": "not a value"}}, "team='not a value': a label value"),
        ({"labels": {"bad key!": "x"}}, "'bad key!' is not a Kubernetes label or annotation key"),
        ({"annotations": {"autopilot.dev/managed-by": "me"}}, "Autopilot's own marks"),
        ({"labels": {"app.kubernetes.io/managed-by": "me"}}, "Autopilot sets this label"),
    ],
)
def test_service_metadata_kubernetes_would_refuse_is_refused_naming_the_field(
    metadata: dict[str, Any], problem: str
) -> None:
    [found] = problems_of(with_service(canary=metadata))

    assert found.startswith("service.canary."), found
    assert problem in found


# --- custom metadata, on the cluster --------------------------------------------------


def service(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    return api.sanitize_for_serialization(core.read_namespaced_service(name, namespace))


async def initialize(spec: CanarySpec, namespace: str) -> None:
    await ActivityEnvironment().run(lifecycle.initialize, step_for(spec, namespace, "Initializing"))


@pytest.mark.cluster
@pytest.mark.usefixtures("canary_env")
async def test_each_generated_service_carries_its_labels_and_annotations(
    kube_api: client.ApiClient, namespace: str
) -> None:
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    spec = load_canary_spec((MANIFESTS / "flagger-service-metadata.yaml").read_text())

    await initialize(spec, namespace)

    apex, primary, canary = (
        service(kube_api, namespace, name)["metadata"]
        for name in ("podinfo", "podinfo-primary", "podinfo-canary")
    )
    assert apex["labels"]["team"] == "shop"
    assert apex["annotations"]["prometheus.io/scrape"] == "true"
    assert primary["labels"]["track"] == "stable"
    assert canary["labels"]["track"] == "canary"
    assert canary["annotations"]["example.com/owner"] == "shop-team"
    assert "team" not in primary["labels"] and "track" not in apex["labels"]
    for meta in (apex, primary, canary):  # ours are still there
        assert meta["annotations"][kube.MANAGED_BY] == "canary"


@pytest.mark.cluster
@pytest.mark.usefixtures("canary_env")
async def test_a_label_added_to_the_spec_later_reaches_the_services_and_keeps_others_keys(
    kube_api: client.ApiClient, namespace: str
) -> None:
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    await initialize(load_canary_spec(spec_dict()), namespace)
    core = client.CoreV1Api(kube_api)
    core.patch_namespaced_service(
        "podinfo-canary", namespace, {"metadata": {"labels": {"added-by": "someone-else"}}}
    )

    await initialize(
        load_canary_spec(with_service(canary={"labels": {"track": "canary"}})), namespace
    )

    labels = service(kube_api, namespace, "podinfo-canary")["metadata"]["labels"]
    assert labels["track"] == "canary"
    assert labels["added-by"] == "someone-else"
