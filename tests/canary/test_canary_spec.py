"""The canary spec: Flagger manifests load, bad specs are refused naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from deploy.crd_schema import structural_schema
from models.canary import (
    AnalysisOutcome,
    AnalysisResult,
    CanarySpec,
    CanarySpecError,
    MetricResult,
    MetricStatus,
    NoDataPolicy,
    format_duration,
    load_canary_spec,
    parse_duration,
)
from models.promql import template_resource
from tests.canary.specs import FLAGGER_PODINFO, spec_dict


def problems_of(spec: dict) -> list[str]:
    with pytest.raises(CanarySpecError) as caught:
        load_canary_spec(spec)
    return caught.value.problems


def test_a_flagger_manifest_loads_after_changing_api_version_and_kind():
    ours = FLAGGER_PODINFO.replace("flagger.app/v1beta1", "autopilot.dev/v1alpha1")
    spec = load_canary_spec(ours)
    assert spec.target_ref.name == "podinfo"
    assert spec.analysis.interval == timedelta(minutes=1)
    assert spec.analysis.weight_plan() == [10, 20, 30, 40, 50]
    assert [m.name for m in spec.analysis.metrics] == ["request-success-rate", "request-duration"]
    assert spec.analysis.metrics[1].interval == timedelta(seconds=30)
    assert spec.analysis.webhooks[1].type == "rollout"  # Flagger's default type
    assert spec.service.retries == {
        "attempts": 3,
        "perTryTimeout": "1s",
        "retryOn": "gateway-error,connect-failure,refused-stream",
    }


def test_a_flagger_manifest_also_loads_unchanged_to_ease_migration():
    assert load_canary_spec(FLAGGER_PODINFO).service.port == 9898


def test_a_manifest_of_another_kind_is_refused():
    problems = problems_of({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})
    assert problems[0].startswith("kind:")


def test_the_spec_round_trips_through_its_camel_case_json():
    spec = load_canary_spec(FLAGGER_PODINFO)
    data = json.loads(spec.model_dump_json(by_alias=True))
    assert data["analysis"]["interval"] == "1m"
    assert data["progressDeadlineSeconds"] == 60
    assert CanarySpec.model_validate(data) == spec


def test_approver_rules_load_camel_cased_and_round_trip():
    spec_data = spec_dict()
    spec_data["approvers"] = {
        "rules": [{"groups": ["shop:leads"], "commands": ["approve"]}, {"users": ["alice"]}],
        "allowUnauthenticated": True,
    }
    spec = load_canary_spec(spec_data)
    assert spec.approvers is not None
    assert spec.approvers.summary() == [
        "approve: groups shop:leads",
        "every command: users alice",
        "unauthenticated names (via temporal) are matched against users",
    ]
    assert CanarySpec.model_validate(spec.model_dump(mode="json", by_alias=True)) == spec


def test_more_approver_rules_than_the_bound_are_refused_naming_the_field():
    spec_data = spec_dict()
    spec_data["approvers"] = {"rules": [{"users": [f"u{i}"]} for i in range(17)]}
    problems = problems_of(spec_data)
    assert problems[0].startswith("approvers.rules:")
    assert "at most 16" in problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m", 60), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("1.5s", 1.5)],
)
def test_durations_read_as_flagger_writes_them(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parse_duration(text))) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("analysis", "field", "words"),
    [
        ({"stepWeight": -5}, "analysis.stepWeight", "greater than or equal to 1"),
        ({"maxWeight": 101}, "analysis.maxWeight", "less than or equal to 100"),
        ({"interval": "500ms"}, "analysis.interval", "at least 1s"),
        ({"interval": "soon"}, "analysis.interval", "is not a duration"),
        ({"stepWeights": [10, 30, 20]}, "analysis.stepWeights", "ascending"),
        ({"stepWeights": [10, 120]}, "analysis.stepWeights", "1..100"),
        ({"threshold": 0}, "analysis.threshold", "greater than or equal to 1"),
        ({"match": [{"headers": {"x": {"exact": "y"}}}]}, "analysis.match", "needs iterations"),
        ({"mirrorWeight": 50}, "analysis.mirrorWeight", "needs mirror: true"),
        ({"bogus": 1}, "analysis.bogus", "Extra inputs"),
        (
            {"metrics": [{"name": "error-count", "thresholdRange": {"max": 1}}]},
            "analysis.metrics[0]",
            "not a built-in metric",
        ),
        (
            {"metrics": [{"name": "request-success-rate", "thresholdRange": {}}]},
            "analysis.metrics[0].thresholdRange",
            "set min, max or both",
        ),
        (
            {"metrics": [{"name": "x", "query": "up{{ nope }}", "thresholdRange": {"min": 1}}]},
            "analysis.metrics[0]",
            "{{ nope }}",
        ),
        (
            {"metrics": [{"name": "request-success-rate", "noData": "maybe"}]},
            "analysis.metrics[0].noData",
            "'fail', 'hold' or 'pass'",
        ),
        (
            {"webhooks": [{"name": "w", "type": "pre-flight", "url": "http://x"}]},
            "analysis.webhooks[0].type",
            "confirm-rollout",
        ),
    ],
)
def test_an_invalid_spec_is_refused_with_a_message_naming_the_field(analysis, field, words):
    problems = problems_of(spec_dict(**analysis))
    assert any(p.startswith(f"{field}:") and words in p for p in problems), problems


def test_a_spec_without_a_plan_says_which_fields_make_one():
    spec = spec_dict()
    del spec["analysis"]["stepWeight"]
    assert any("stepWeight, stepWeights or iterations" in p for p in problems_of(spec))


def test_a_step_above_max_weight_is_refused():
    problems = problems_of(spec_dict(stepWeight=60, maxWeight=50))
    assert any("stepWeight 60 is above maxWeight 50" in p for p in problems)


def test_errors_in_a_manifest_are_reported_under_spec():
    spec = spec_dict()
    spec["analysis"]["stepWeight"] = 0
    manifest = {"apiVersion": "autopilot.dev/v1alpha1", "kind": "Canary", "spec": spec}
    assert problems_of(manifest) == [
        "spec.analysis.stepWeight: Input should be greater than or equal to 1"
    ]


@pytest.mark.parametrize(
    ("field", "value"), [("ingressRef", {"name": "gateway"}), ("upstreamRef", {"name": "app"})]
)
def test_flagger_fields_that_would_change_behaviour_are_refused_not_ignored(field, value):
    spec = spec_dict()
    spec[field] = value
    assert any(p.startswith(f"{field}:") and "not supported" in p for p in problems_of(spec))


def test_a_template_ref_not_declared_in_the_spec_names_a_metric_template_resource():
    spec = load_canary_spec(
        spec_dict(
            metrics=[
                {
                    "name": "errors",
                    "templateRef": {"name": "error-rate"},
                    "thresholdRange": {"max": 1},
                },
                {
                    "name": "shared",
                    "templateRef": {"name": "latency", "namespace": "ops"},
                    "thresholdRange": {"max": 1},
                },
            ]
        )
    )
    errors, shared = spec.analysis.metrics

    assert template_resource(errors, spec, "shop") == "shop/error-rate"
    assert template_resource(shared, spec, "shop") == "ops/latency"


@pytest.mark.parametrize(
    ("analysis", "plan"),
    [
        ({"stepWeight": 10, "maxWeight": 50}, [10, 20, 30, 40, 50]),
        ({"stepWeight": 30, "maxWeight": 80}, [30, 60, 80]),
        ({"stepWeight": 25, "maxWeight": None}, [25, 50, 75, 100]),
        ({"stepWeight": None, "stepWeights": [1, 5, 25, 50], "maxWeight": None}, [1, 5, 25, 50]),
        ({"stepWeight": None, "iterations": 3, "maxWeight": None}, [0, 0, 0]),
    ],
)
def test_the_weight_plan_follows_flagger(analysis, plan):
    spec = spec_dict(**analysis)
    spec["analysis"] = {k: v for k, v in spec["analysis"].items() if v is not None}
    assert load_canary_spec(spec).analysis.weight_plan() == plan


def test_the_crd_schema_is_structural():
    schema = structural_schema(CanarySpec)
    text = json.dumps(schema)
    assert "$ref" not in text and "anyOf" not in text and '"title"' not in text
    analysis = schema["properties"]["analysis"]["properties"]
    assert analysis["interval"]["type"] == "string"
    assert analysis["stepWeight"]["minimum"] == 1
    assert analysis["metrics"]["items"]["properties"]["noData"]["enum"] == ["fail", "hold", "pass"]
    assert "canaryAnalysis" not in schema["properties"]  # refused fields are not offered
    assert analysis["match"]["items"]["properties"]["headers"]["maxProperties"] == 50
    assert schema["properties"]["service"]["properties"]["trafficPolicy"][
        "x-kubernetes-preserve-unknown-fields"
    ]


def _metric(status: MetricStatus, policy: NoDataPolicy = NoDataPolicy.HOLD) -> MetricResult:
    return MetricResult(name="m", status=status, value=None, no_data=policy)


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([(MetricStatus.PASS, "hold")], AnalysisOutcome.PASSED),
        ([(MetricStatus.PASS, "hold"), (MetricStatus.FAIL, "hold")], AnalysisOutcome.FAILED),
        ([(MetricStatus.NO_DATA, "hold")], AnalysisOutcome.NO_DATA),
        ([(MetricStatus.NO_DATA, "fail")], AnalysisOutcome.FAILED),
        ([(MetricStatus.NO_DATA, "pass")], AnalysisOutcome.PASSED),
        ([(MetricStatus.NO_DATA, "hold"), (MetricStatus.FAIL, "pass")], AnalysisOutcome.FAILED),
    ],
)
def test_no_data_means_what_the_metric_policy_says(statuses, outcome):
    result = AnalysisResult(
        at="2024-01-01T00:00:00Z",
        metrics=[_metric(s, NoDataPolicy(p)) for s, p in statuses],
    )
    assert result.outcome == outcome


def test_the_shipped_example_loads():
    root = Path(__file__).resolve().parents[2]
    spec = load_canary_spec((root / "deploy/examples/canary.yaml").read_text())
    assert spec.analysis.weight_plan() == [10, 20, 30, 40, 50]
    assert spec.analysis.gates.before_promotion
