"""``spec.autoscalerRef`` offline: Flagger's manifests load and lint, mistakes name their field,
and the primary's HPA is derived from the user's as documented (no cluster needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from activities.canary.autoscalers import build_primary_hpa, primary_hpa_spec
from cli.errors import Exit
from cli.main import app
from models.canary import AutoscalerRef, CanarySpecError, load_canary_spec

MANIFEST = Path(__file__).parent / "manifests" / "flagger-autoscaler-ref.yaml"

USERS: dict[str, Any] = {
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "minReplicas": 2,
        "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    }
}


def canary_with(autoscaler: dict[str, Any]) -> str:
    canary = MANIFEST.read_text().split("---")[-1]
    return canary.replace(
        "name: podinfo\n    primaryScalerReplicas:\n      minReplicas: 2\n      maxReplicas: 5",
        "\n    ".join(f"{key}: {value}" for key, value in autoscaler.items()),
    )


def test_flaggers_manifest_with_an_hpa_passes_lint_unchanged() -> None:
    result = CliRunner().invoke(app, ["lint", str(MANIFEST)], catch_exceptions=False)

    assert result.exit_code == Exit.OK, result.output
    assert "1 document(s) checked, 0 invalid, 2 of other kinds skipped" in result.stderr


def test_the_autoscaler_ref_loads_with_flaggers_field_names() -> None:
    spec = load_canary_spec(MANIFEST.read_text().split("---")[-1])

    assert spec.autoscaler_ref is not None
    assert spec.autoscaler_ref.name == "podinfo"
    bounds = spec.autoscaler_ref.primary_scaler_replicas
    assert bounds is not None and (bounds.min_replicas, bounds.max_replicas) == (2, 5)


@pytest.mark.parametrize(
    ("autoscaler", "problem"),
    [
        (
            {"name": "podinfo", "primaryScalerReplicas": "{minReplicas: 6, maxReplicas: 5}"},
            "spec.autoscalerRef.primaryScalerReplicas: minReplicas (6) is greater than "
            "maxReplicas (5)",
        ),
        (
            {"name": "podinfo", "primaryScalerReplicas": "{minReplicas: 0}"},
            "spec.autoscalerRef.primaryScalerReplicas.minReplicas: Input should be greater than "
            "or equal to 1",
        ),
        (
            {"name": "podinfo", "primaryScalerQueries": "{trigger: up}"},
            "spec.autoscalerRef.primaryScalerQueries: primaryScalerQueries is not supported by "
            "Autopilot; it applies to KEDA ScaledObjects",
        ),
        ({"name": "Not_A_Name"}, "spec.autoscalerRef.name: String should match pattern"),
    ],
)
def test_a_wrong_autoscaler_ref_is_refused_naming_its_field(
    autoscaler: dict[str, Any], problem: str
) -> None:
    with pytest.raises(CanarySpecError) as refused:
        load_canary_spec(canary_with(autoscaler))

    assert any(line.startswith(problem) for line in refused.value.problems), refused.value


def test_a_keda_scaled_object_or_an_old_hpa_version_is_refused() -> None:
    keda = canary_with({"name": "podinfo"}).replace(
        "kind: HorizontalPodAutoscaler", "kind: ScaledObject"
    )
    beta = canary_with({"name": "podinfo"}).replace("autoscaling/v2", "autoscaling/v2beta2")

    for text, field in ((keda, "kind"), (beta, "apiVersion")):
        with pytest.raises(CanarySpecError) as refused:
            load_canary_spec(text)
        assert refused.value.problems[0].startswith(f"spec.autoscalerRef.{field}: Input should")


def test_the_primarys_hpa_is_the_users_pointed_at_the_primary() -> None:
    ref = AutoscalerRef(name="podinfo")
    primary = {"metadata": {"name": "podinfo-primary", "namespace": "shop", "uid": "u-1"}}

    hpa = build_primary_hpa(USERS, ref, primary, "canary/shop/podinfo")

    assert hpa["metadata"]["name"] == "podinfo-primary"
    assert hpa["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary", "uid": "u-1"}
    ]
    pointed = {**USERS["spec"]["scaleTargetRef"], "name": "podinfo-primary"}
    assert hpa["spec"] == {**USERS["spec"], "scaleTargetRef": pointed}


def test_primary_scaler_replicas_replace_only_the_bounds_they_give() -> None:
    ref = AutoscalerRef.model_validate(
        {"name": "podinfo", "primaryScalerReplicas": {"maxReplicas": 9}}
    )

    spec = primary_hpa_spec(USERS, ref, "podinfo")

    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 9)
    assert spec["metrics"] == USERS["spec"]["metrics"]
