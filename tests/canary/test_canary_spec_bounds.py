"""The canary spec's size bounds: each refusal names its field and its limit.

The same model checks the CLI's file, the watchers' Canary and the workflow's input, so the
last test shows the workflow itself refusing a spec over a bound, at start.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from models.canary import (
    CanarySpecError,
    load_canary_spec,
    parse_manifest,
    spec_differences,
)
from models.limits import MAX_MANIFEST_BYTES, format_size
from models.operator import OperatorInput, Target
from tests.canary.specs import make_spec, spec_dict
from worker_main import make_worker
from workflows.canary import CanaryWorkflow

SUCCESS_RATE = {"name": "request-success-rate", "thresholdRange": {"min": 99}}


def metrics(count: int) -> list[dict[str, Any]]:
    return [{"name": f"m{i}", "thresholdRange": {"min": 99}} for i in range(count)]


def problems_of(source: Any) -> list[str]:
    with pytest.raises(CanarySpecError) as caught:
        load_canary_spec(source)
    return caught.value.problems


def manifest_text(spec: dict[str, Any]) -> str:
    """A Canary manifest; in JSON (which is YAML too), written in no time even when huge."""
    document = {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "podinfo"},
        "spec": spec,
    }
    return json.dumps(document, indent=2)


@pytest.mark.parametrize(
    ("analysis", "problem"),
    [
        (
            {"metrics": metrics(51)},
            "analysis.metrics: List should have at most 50 items after validation, not 51",
        ),
        (
            {"webhooks": [{"name": f"h{i}", "url": "http://hooks/"} for i in range(51)]},
            "analysis.webhooks: List should have at most 50 items after validation, not 51",
        ),
        (
            {"stepWeight": None, "stepWeights": [*range(1, 102)]},
            "analysis.stepWeights: List should have at most 100 items after validation",
        ),
        (
            {"metrics": [{**SUCCESS_RATE, "name": "n" * 254}]},
            "analysis.metrics[0].name: String should have at most 253 characters",
        ),
        (
            {"metrics": [{"name": "q", "thresholdRange": {"max": 1}, "query": "x" * 10241}]},
            "analysis.metrics[0].query: String should have at most 10240 characters",
        ),
        (
            {
                "webhooks": [
                    {"name": "load", "url": "http://hooks/", "metadata": {"k": "v" * 10241}}
                ]
            },
            "analysis.webhooks[0].metadata.k: String should have at most 10240 characters",
        ),
        (
            {"stepWeight": None, "iterations": 10**12},
            "analysis.iterations: Input should be less than or equal to 1000",
        ),
        (
            {"interval": "9" * 30 + "h"},
            "analysis.interval: '" + "9" * 30 + "h' is longer than any duration can be",
        ),
        (
            {"interval": "1" * 65 + "s"},
            "analysis.interval: a duration may be at most 64 characters",
        ),
    ],
)
def test_a_spec_over_a_bound_is_refused_naming_the_field_and_the_limit(analysis, problem):
    problems = problems_of(spec_dict(**analysis))
    assert any(line.startswith(problem) for line in problems), problems


def test_a_spec_too_large_for_temporal_is_refused_naming_its_largest_part():
    spec = spec_dict(metrics=[SUCCESS_RATE])
    spec["service"]["trafficPolicy"] = {"connectionPool": {"note": "x" * 300_000}}

    assert problems_of(spec) == [
        "service.trafficPolicy: a canary spec may be at most 256 KiB as JSON (Temporal "
        "carries it in every step); this is its largest part"
    ]


def test_a_yaml_alias_bomb_is_refused_without_being_expanded():
    # Nine levels of nine aliases: 387 million strings if anything expanded it.
    levels = ["      l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"      l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    text = "\n".join(
        [
            "apiVersion: autopilot.dev/v1alpha1",
            "kind: Canary",
            "metadata: {name: podinfo}",
            "spec:",
            "  targetRef: {name: podinfo}",
            "  analysis: {stepWeight: 10}",
            "  service:",
            "    port: 9898",
            "    trafficPolicy:",
            *levels,
        ]
    )

    assert problems_of(text) == [
        "spec.service.trafficPolicy: a canary spec may be at most 256 KiB as JSON (Temporal "
        "carries it in every step); this is its largest part"
    ]


def test_a_manifest_over_the_size_limit_is_refused_before_it_is_parsed():
    # Not even YAML: were it parsed, the problem would be a syntax error.
    text = "analysis: [" * (MAX_MANIFEST_BYTES // 10)

    with pytest.raises(CanarySpecError) as refused:
        parse_manifest(text)

    assert refused.value.problems == [
        f"(document): {format_size(len(text))}; a canary manifest may be at most 256 KiB"
    ]


def test_a_manifest_of_150000_metrics_is_refused_for_its_size():
    problems = problems_of(manifest_text(spec_dict(metrics=metrics(150_000))))
    assert len(problems) == 1
    assert problems[0].endswith("MiB; a canary manifest may be at most 256 KiB")


def test_repeated_metric_names_are_each_named_once():
    other = {"name": "x", "thresholdRange": {"max": 1}, "query": "up"}
    spec = spec_dict(metrics=[SUCCESS_RATE, SUCCESS_RATE, other] * 2)
    problems = problems_of(spec)
    assert any(
        "metric names must be unique; repeated: request-success-rate, x" in p for p in problems
    )


# -- comparing a running spec with a file's ------------------------------------------------


def test_the_same_spec_written_differently_has_no_differences():
    running = make_spec(interval="60s").model_dump(mode="json", by_alias=True)
    del running["progressDeadlineSeconds"]  # a default left out is the same default
    assert spec_differences(running, make_spec(interval="1m")) == []


def test_differences_name_each_changed_field_with_its_old_and_new_value():
    running = make_spec(threshold=2, metrics=[SUCCESS_RATE]).model_dump(mode="json", by_alias=True)
    wanted = make_spec(
        threshold=5,
        metrics=[
            {**SUCCESS_RATE, "thresholdRange": {"min": 95}},
            {"name": "request-duration", "thresholdRange": {"max": 500}},
        ],
    )

    changes = spec_differences(running, wanted)
    assert changes[:2] == [
        "spec.analysis.threshold: 2 → 5",
        "spec.analysis.metrics[0].thresholdRange.min: 99.0 → 95.0",
    ]
    assert changes[2].startswith('spec.analysis.metrics[1]: added {"name": "request-duration"')
    assert len(changes) == 3
    assert spec_differences(
        wanted.model_dump(mode="json", by_alias=True), make_spec(threshold=5)
    ) == [
        "spec.analysis.metrics[0]: removed",
        "spec.analysis.metrics[1]: removed",
    ]


# -- the workflow refuses the same spec ----------------------------------------------------


@pytest.mark.temporal
async def test_the_workflow_refuses_a_spec_over_a_bound_at_start_naming_the_field(
    dev_server_env: WorkflowEnvironment,
):
    client = dev_server_env.client
    task_queue = f"bounds-{uuid.uuid4().hex[:6]}"
    target = Target(namespace="bounds", name=f"app-{uuid.uuid4().hex[:6]}")
    async with make_worker(client, task_queue, [CanaryWorkflow], []):
        handle = await client.start_workflow(
            "canary",
            OperatorInput(target=target, spec=spec_dict(metrics=metrics(51))),
            id=target.workflow_id("canary"),
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()

    message = str(failed.value.cause)
    assert "invalid canary spec" in message
    assert "spec.analysis.metrics: List should have at most 50 items after validation" in message
