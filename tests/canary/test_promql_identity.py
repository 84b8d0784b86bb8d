"""The canary worker and the Prometheus watcher ask Prometheus the same question.

Both start from one canary spec: the worker through ``canary.analyse`` (one query per
rollout), the watcher through its tick plan (one query per template, grouped by workload
where rollouts can share it). A template the watcher cannot share goes out byte for byte as
the worker sends it. A shared one is the worker's query grouped ``by`` workload, and for one
rollout nothing else differs: the label matchers become regular expressions (``=~``), which
match a name without metacharacters exactly as ``=`` does.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from activities.canary.metrics import prometheus_url, query_for
from models.canary import CanarySpec, load_canary_spec
from models.operator import Target
from models.promql import TEMPLATE_VARIABLES, MetricQuery
from tests.canary.specs import spec_dict
from watchers.prometheus.queries import GROUP_LABELS, PlannedQuery, plan, shareable, wanted_metrics

TARGET = Target(namespace="test", name="podinfo")
WORKFLOW_ID = "canary/test/podinfo"

#: Every variable a template may use, each as a label matcher, and one of the metric's own.
EVERY_VARIABLE = (
    "sum(rate(requests_total{"
    + ",".join(f'{name}="{{{{ {name} }}}}"' for name in TEMPLATE_VARIABLES)
    + ',tier="{{ variables.tier }}"}[{{ interval }}]))'
)
#: A custom template rollouts can share: it keeps both workload labels.
GROUPED_CUSTOM = (
    "sum by (destination_workload_namespace, destination_workload) (rate(errors_total{"
    'destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",'
    'tier="{{ variables.tier }}"}[{{ interval }}]))'
)


def canary_with(metric: dict[str, Any], **analysis: Any) -> CanarySpec:
    """A canary of ``podinfo`` behind the Service ``front``, with one metric."""
    spec = spec_dict(metrics=[metric], **analysis)
    spec["service"]["name"] = "front"
    return load_canary_spec(spec)


def sent_by_the_watcher(spec: CanarySpec) -> PlannedQuery:
    """The one query the watcher's tick plan sends for this rollout alone."""
    (query,) = plan(wanted_metrics(WORKFLOW_ID, TARGET.namespace, spec))
    return query


def ungrouped(promql: str) -> str:
    """A query without its ``by (...)`` clauses and with ``=~`` matchers read as ``=``."""
    return re.sub(r"\s*\bby\s*\([^)]*\)\s*", "", promql).replace('=~"', '="')


def grouping(promql: str) -> list[set[str]]:
    """The labels of every ``by (...)`` clause, in order."""
    return [
        {label.strip() for label in labels.split(",")}
        for labels in re.findall(r"\bby\s*\(([^)]*)\)", promql)
    ]


BUILTINS = {
    "request-success-rate": {"name": "request-success-rate", "thresholdRange": {"min": 99}},
    "request-duration": {
        "name": "request-duration",
        "thresholdRange": {"max": 500},
        "interval": "30s",
    },
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_a_built_in_metric_is_sampled_with_the_workers_query_grouped_by_workload(name: str):
    spec = canary_with(BUILTINS[name])
    worker = query_for(spec.analysis.metrics[0], spec, TARGET)

    sent = sent_by_the_watcher(spec)

    assert sent.grouped
    assert ungrouped(sent.promql) == ungrouped(worker)
    kept_by_worker = grouping(worker) or [set() for _ in grouping(sent.promql)]
    assert grouping(sent.promql) == [labels | set(GROUP_LABELS) for labels in kept_by_worker]


def test_a_shareable_custom_template_is_the_workers_query_with_regular_expression_matchers():
    spec = canary_with(
        {
            "name": "errors",
            "query": GROUPED_CUSTOM,
            "templateVariables": {"tier": "web"},
            "thresholdRange": {"max": 1},
        }
    )
    worker = query_for(spec.analysis.metrics[0], spec, TARGET)

    sent = sent_by_the_watcher(spec)

    assert shareable(GROUPED_CUSTOM) and sent.grouped
    assert sent.promql == worker.replace('="test"', '=~"test"').replace('="podinfo"', '=~"podinfo"')


def test_a_custom_template_using_every_variable_is_sent_byte_for_byte_as_the_worker_sends_it():
    spec = canary_with(
        {
            "name": "everything",
            "query": EVERY_VARIABLE,
            "templateVariables": {"tier": "web"},
            "interval": "90s",
            "thresholdRange": {"max": 1},
        }
    )
    worker = query_for(spec.analysis.metrics[0], spec, TARGET)

    sent = sent_by_the_watcher(spec)

    assert not sent.grouped
    assert sent.promql == worker
    assert worker == (
        'sum(rate(requests_total{namespace="test",target="podinfo",service="front",'
        'interval="1m30s",name="podinfo",primary="podinfo-primary",canary="podinfo",'
        'tier="web"}[1m30s]))'
    )


def test_a_template_with_its_own_prometheus_is_asked_there_by_both():
    spec = canary_with(
        {
            "name": "slow",
            "templateRef": {"name": "slow"},
            "templateVariables": {"tier": "web"},
            "thresholdRange": {"max": 1},
        },
        metricTemplates={
            "slow": {"query": EVERY_VARIABLE, "address": "http://metrics.example:9090"}
        },
    )
    metric = spec.analysis.metrics[0]

    sent = sent_by_the_watcher(spec)

    assert sent.promql == query_for(metric, spec, TARGET)
    assert sent.address == prometheus_url(MetricQuery.of(metric, spec, TARGET.namespace))
    assert sent.address == "http://metrics.example:9090"
