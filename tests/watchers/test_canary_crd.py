"""The generated Canary CRD, as the real API server and the real kubectl see it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from tests.watchers.support import Cluster, canary, kubectl, unique

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_crd_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.generate_crds", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_negative_step_weight_is_refused_by_the_api_server_naming_the_field(
    cluster: Cluster,
) -> None:
    body = canary(unique(), analysis={"stepWeight": -5})

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    assert refused.value.status == 422
    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.analysis.stepWeight" in message
    assert "greater than or equal to 1" in message


def test_more_metrics_than_the_bound_are_refused_by_the_api_server_naming_the_limit(
    cluster: Cluster,
) -> None:
    metrics = [{"name": f"m{i}", "thresholdRange": {"min": 99}} for i in range(51)]
    body = canary(unique(), analysis={"stepWeight": 10, "metrics": metrics})

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    assert refused.value.status == 422
    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.analysis.metrics: Too many: 51: must have at most 50 items" in message


def test_an_oversize_query_is_refused_by_the_api_server_naming_the_field(
    cluster: Cluster,
) -> None:
    metric = {"name": "latency", "thresholdRange": {"max": 1}, "query": "x" * 10241}
    body = canary(unique(), analysis={"stepWeight": 10, "metrics": [metric]})

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.analysis.metrics[0].query: Too long: may not be more than 10240 bytes" in (message)


def test_an_oversize_webhook_metadata_key_is_refused_by_the_api_server_naming_the_field(
    cluster: Cluster,
) -> None:
    hook = {"name": "load", "url": "http://loadtester/", "metadata": {"k" * 254: "v"}}
    body = canary(unique(), analysis={"stepWeight": 10, "webhooks": [hook]})

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.analysis.webhooks[0].metadata: Invalid value" in message
    assert "keys may be at most 253 characters" in message


def test_a_flagger_field_autopilot_refuses_is_refused_at_apply_with_the_reason(
    cluster: Cluster,
) -> None:
    body = canary(unique(), analysis={"stepWeight": 10})
    body["spec"]["canaryAnalysis"] = {"interval": "1m"}  # Flagger's v1alpha3 name

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.canaryAnalysis" in message
    assert "it was renamed analysis in flagger.app/v1beta1" in message


def test_a_flagger_field_switched_off_is_accepted(cluster: Cluster) -> None:
    body = canary(unique(), analysis={"stepWeight": 10, "mirror": False})
    body["spec"]["suspend"] = False

    created = cluster.create_canary(body)

    assert created["spec"]["analysis"]["mirror"] is False


def test_an_unknown_duration_format_is_refused_naming_the_field(cluster: Cluster) -> None:
    body = canary(unique(), analysis={"stepWeight": 10, "interval": "one minute"})

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    assert "spec.analysis.interval" in json.loads(refused.value.body or "{}")["message"]


def test_kubectl_get_canaries_has_the_columns_a_flagger_user_expects(
    cluster: Cluster, kubeconfig_path: Path
) -> None:
    name = unique()
    cluster.create_canary(canary(name))
    cluster.custom.patch_namespaced_custom_object_status(
        "autopilot.dev",
        "v1alpha1",
        cluster.namespace,
        "canaries",
        name,
        {
            "status": {
                "phase": "Progressing",
                "state": "Analysing",
                "canaryWeight": 30,
                "failedChecks": 1,
                "lastTransitionTime": "2026-01-02T03:04:05Z",
                "workflowId": f"canary/{cluster.namespace}/{name}",
            }
        },
    )

    table = kubectl(kubeconfig_path, "get", "canaries", "-n", cluster.namespace)
    short = kubectl(kubeconfig_path, "get", "apc", "-n", cluster.namespace, "-o", "wide")

    header, row = table.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "PHASE",
        "WEIGHT",
        "FAILEDCHECKS",
        "LASTTRANSITION",
        "WORKFLOW",
        "AGE",
    ]
    assert row.split()[:4] == [name, "Progressing", "30", "1"]
    assert f"canary/{cluster.namespace}/{name}" in row
    assert "Analysing" in short.splitlines()[1]


def test_approver_rules_are_kept_by_the_api_server_and_a_bad_command_name_is_refused(
    cluster: Cluster,
) -> None:
    rules = {"rules": [{"groups": ["shop:leads"], "commands": ["approve", "promote"]}]}
    body = canary(unique(), analysis={"stepWeight": 10})
    body["spec"]["approvers"] = rules
    wrong = canary(unique(), analysis={"stepWeight": 10})
    wrong["spec"]["approvers"] = {"rules": [{"users": ["alice"], "commands": ["Approve!"]}]}

    created = cluster.create_canary(body)
    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(wrong)

    assert created["spec"]["approvers"] == rules
    assert refused.value.status == 422
    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.approvers.rules[0].commands[0]" in message
