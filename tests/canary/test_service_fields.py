"""Flagger's ``service`` fields for the generated objects, offline and on the local cluster:
the Services' custom metadata (``apex``, ``primary``, ``canary``) and VirtualService
``delegation``.

Why delegation is tested on the objects written, not through traffic: the simulated data
plane does not implement Istio's ``delegate`` (docs/dataplane-sim.md); the real API server
with Istio's CRDs stores both VirtualServices, and we assert what Istio would be given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities import kube
from activities.canary import lifecycle
from activities.canary.routing import IstioRouter
from cli.errors import Exit
from cli.main import app
from models.canary import CanarySpec, CanarySpecError, load_canary_spec
from tests.canary.cluster import (
    app_deployment,
    create_app,
    step_for,
    virtual_service,
    weights,
)
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


# --- delegation -----------------------------------------------------------------------


def test_flaggers_manifest_with_delegation_passes_lint_unchanged() -> None:
    result = lint(MANIFESTS / "flagger-delegation.yaml")

    assert result.exit_code == Exit.OK, result.output
    assert "1 document(s) checked, 0 invalid, 1 of other kinds skipped" in result.stderr


@pytest.mark.parametrize(
    ("service", "problem"),
    [
        ({"hosts": ["app.example.com"]}, "service.hosts: hosts does not combine with delegation"),
        ({"gateways": ["public"]}, "service.gateways: gateways does not combine with delegation"),
    ],
)
def test_hosts_or_gateways_with_delegation_are_refused_naming_them(
    service: dict[str, Any], problem: str
) -> None:
    [found] = problems_of(with_service(delegation=True, **service))

    assert found.startswith(problem), found


def test_delegation_with_the_gateway_api_is_refused_naming_it() -> None:
    spec = with_service(delegation=True, gatewayRefs=[{"name": "public"}])
    spec["provider"] = "gatewayapi:v1"

    assert problems_of(spec) == [
        "service.delegation: not supported with provider gatewayapi:v1; "
        "it is Istio VirtualService delegation"
    ]


def documents(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.mark.cluster
@pytest.mark.usefixtures("canary_env")
async def test_a_delegate_virtual_service_has_no_hosts_or_gateways_and_carries_the_weights(
    kube_api: client.ApiClient, namespace: str
) -> None:
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    root, canary = documents(MANIFESTS / "flagger-delegation.yaml")
    root["metadata"]["namespace"] = root["spec"]["http"][0]["delegate"]["namespace"] = namespace
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", root
    )
    spec = load_canary_spec(canary)

    await initialize(spec, namespace)
    await IstioRouter(spec, namespace, "test").set_routes(90, 10)

    delegate = virtual_service(kube_api, namespace, "podinfo")
    assert "hosts" not in delegate["spec"] and "gateways" not in delegate["spec"]
    assert weights(delegate) == {"podinfo-primary": 90, "podinfo-canary": 10}
    stored_root = virtual_service(kube_api, namespace, "frontend")
    assert stored_root["spec"] == root["spec"]  # the user's root is left alone


# --- other providers' fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "provider"),
    [
        (
            "ingressRef",
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "app"},
            "NGINX",
        ),
        (
            "routeRef",
            {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "app"},
            "APISIX",
        ),
        (
            "upstreamRef",
            {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "app"},
            "Gloo",
        ),
    ],
)
def test_another_providers_field_is_refused_naming_that_provider(
    field: str, value: dict[str, Any], provider: str
) -> None:
    spec = spec_dict()
    spec[field] = value

    [found] = problems_of(spec)

    assert found.startswith(f"{field}: {field} is not supported by Autopilot; "), found
    assert f"a field of Flagger's {provider}" in found
    assert "routes with istio or gatewayapi:v1" in found


def test_service_mirror_is_not_a_flagger_field_and_is_unknown() -> None:
    assert problems_of(with_service(mirror=True)) == [
        "service.mirror: Extra inputs are not permitted"
    ]
