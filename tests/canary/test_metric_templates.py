"""``MetricTemplate`` resources, read from the real API server at each analysis.

A platform team keeps shared templates in a namespace of its own; a canary in another
namespace names one with ``templateRef: {name, namespace}``. The check renders it with the
canary's variables (the one PromQL module), and a template that is missing or invalid fails
that check with the reason instead of crashing the analysis.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from activities.canary.metrics import check
from activities.canary.templates import read_templates
from models.canary import MetricStatus
from models.operator import Target
from models.promql import BUILTIN_QUERIES, MetricQuery
from tests.canary.specs import make_spec
from tests.fixtures.cluster import fresh_namespace
from watchers.prometheus.queries import wanted_metrics

cluster = pytest.mark.cluster

#: Flagger's success rate, as a platform team would share it.
SUCCESS_RATE_QUERY = BUILTIN_QUERIES["request-success-rate"]


def create_template(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "autopilot.dev", "v1alpha1", namespace, "metrictemplates", body
    )


def metric(name: str, ref: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "templateRef": ref, "thresholdRange": {"min": 99}, "interval": "30s"}


@cluster
async def test_a_template_in_another_namespace_is_read_and_rendered_for_the_canary(
    kube_api, namespace, canary_env
):
    with fresh_namespace(kube_api) as shared:
        create_template(
            kube_api,
            shared,
            "success-rate",
            {"provider": {"type": "prometheus"}, "query": SUCCESS_RATE_QUERY},
        )
        spec = make_spec(metrics=[metric("success", {"name": "success-rate", "namespace": shared})])

        templates = await read_templates(spec, namespace)
        result = await check(
            spec.analysis.metrics[0], spec, Target(namespace=namespace, name="podinfo"), templates
        )

    assert list(templates.found) == [f"{shared}/success-rate"] and not templates.problems
    builtin = make_spec(
        metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"}]
    )
    expected = MetricQuery.of(builtin.analysis.metrics[0], builtin, namespace).promql()
    assert result.query == expected, "rendered with the canary's namespace, target and interval"


@cluster
async def test_a_template_ref_without_a_namespace_is_looked_for_in_the_canarys(
    kube_api, namespace, canary_env
):
    create_template(kube_api, namespace, "latency", {"query": 'up{ns="{{ namespace }}"}'})
    spec = make_spec(metrics=[metric("latency", {"name": "latency"})])

    templates = await read_templates(spec, namespace)

    assert list(templates.found) == [f"{namespace}/latency"]


@cluster
async def test_a_missing_template_fails_the_check_with_the_reason(kube_api, namespace, canary_env):
    spec = make_spec(metrics=[metric("gone", {"name": "not-there", "namespace": namespace})])
    target = Target(namespace=namespace, name="podinfo")

    result = await check(
        spec.analysis.metrics[0], spec, target, await read_templates(spec, namespace)
    )

    assert result.status == MetricStatus.FAIL
    assert result.message == f"MetricTemplate {namespace}/not-there not found"
    assert result.describe().startswith("gone")


@cluster
async def test_a_template_of_another_provider_fails_the_check_naming_the_field(
    kube_api, namespace, canary_env
):
    create_template(
        kube_api, namespace, "dd", {"provider": {"type": "datadog"}, "query": "avg:trace.errors"}
    )
    spec = make_spec(metrics=[metric("dd", {"name": "dd"})])
    target = Target(namespace=namespace, name="podinfo")

    result = await check(
        spec.analysis.metrics[0], spec, target, await read_templates(spec, namespace)
    )

    assert result.status == MetricStatus.FAIL
    assert f"MetricTemplate {namespace}/dd is invalid: spec.provider.type:" in result.message
    assert "'datadog' is not supported by Autopilot" in result.message


@cluster
async def test_a_template_using_a_variable_the_metric_does_not_give_fails_the_check(
    kube_api, namespace, canary_env
):
    create_template(kube_api, namespace, "tiered", {"query": 'up{tier="{{ variables.tier }}"}'})
    spec = make_spec(metrics=[metric("tiered", {"name": "tiered"})])
    target = Target(namespace=namespace, name="podinfo")

    result = await check(
        spec.analysis.metrics[0], spec, target, await read_templates(spec, namespace)
    )

    assert result.status == MetricStatus.FAIL
    assert "variables.tier" in result.message


def test_the_prometheus_watcher_leaves_a_resource_templates_metric_to_the_analysis():
    spec = make_spec(
        metrics=[
            {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            metric("shared", {"name": "success-rate", "namespace": "ops"}),
        ]
    )

    sampled = wanted_metrics("canary/shop/podinfo", "shop", spec)

    assert [item.name for item in sampled] == ["request-success-rate"]
