"""PromQL rendering and judging: Flagger's queries exactly, and no data is never a pass."""

from __future__ import annotations

import socket

import pytest

from activities.canary.metrics import check, judge, query_for
from models.canary import MetricStatus, load_canary_spec
from models.operator import Target
from models.promql import render, value_of
from tests.canary.specs import spec_dict

TARGET = Target(namespace="test", name="podinfo")

FLAGGER_SUCCESS_RATE = (
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",'
    'destination_workload=~"podinfo",response_code!~"5.*"}[1m])) / '
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",'
    'destination_workload=~"podinfo"}[1m])) * 100'
)
FLAGGER_DURATION = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    'reporter="destination",destination_workload_namespace="test",'
    'destination_workload=~"podinfo"}[30s])) by (le))'
)


def test_the_built_in_metrics_send_flaggers_istio_queries():
    spec = load_canary_spec(
        spec_dict(
            metrics=[
                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"},
            ]
        )
    )
    success, duration = spec.analysis.metrics
    assert query_for(success, spec, TARGET) == FLAGGER_SUCCESS_RATE
    assert query_for(duration, spec, TARGET) == FLAGGER_DURATION


def test_a_custom_query_gets_the_canarys_variables():
    spec = load_canary_spec(
        spec_dict(
            metrics=[
                {
                    "name": "errors",
                    "query": 'sum(rate(http_errors{ns="{{ namespace }}",app="{{target}}",'
                    'svc="{{ service }}",tier="{{ variables.tier }}"}[{{ interval }}]))',
                    "templateVariables": {"tier": "web"},
                    "interval": "90s",
                    "thresholdRange": {"max": 1},
                }
            ]
        )
    )
    assert query_for(spec.analysis.metrics[0], spec, TARGET) == (
        'sum(rate(http_errors{ns="test",app="podinfo",svc="podinfo",tier="web"}[1m30s]))'
    )


def test_a_template_ref_uses_the_declared_template():
    spec = load_canary_spec(
        spec_dict(
            metricTemplates={"not-found": {"query": 'sum(rate(x{w="{{ primary }}"}[1m]))'}},
            metrics=[
                {"name": "nf", "templateRef": {"name": "not-found"}, "thresholdRange": {"max": 5}}
            ],
        )
    )
    assert (
        query_for(spec.analysis.metrics[0], spec, TARGET) == 'sum(rate(x{w="podinfo-primary"}[1m]))'
    )


def test_rendering_an_unknown_variable_names_it():
    with pytest.raises(KeyError, match="nope"):
        render("{{ nope }}", {"namespace": "x"})


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ([], None),
        ([{"metric": {}, "value": [1.0, "NaN"]}], None),
        ([{"metric": {}, "value": [1.0, "+Inf"]}], None),
        ([{"metric": {}, "value": [1.0, "99.5"]}], 99.5),
    ],
)
def test_an_empty_or_nan_result_is_no_value(result, value):
    assert value_of(result) == value


@pytest.mark.parametrize(
    ("value", "status"),
    [(99.0, MetricStatus.PASS), (98.9, MetricStatus.FAIL), (None, MetricStatus.NO_DATA)],
)
def test_the_threshold_range_is_inclusive_and_missing_values_are_no_data(value, status):
    spec = load_canary_spec(
        spec_dict(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    )
    assert judge(spec.analysis.metrics[0], value, "q", "").status == status


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_prometheus_outage_is_no_data_never_a_pass(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{_closed_port()}")
    spec = load_canary_spec(
        spec_dict(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    )
    result = await check(spec.analysis.metrics[0], spec, TARGET)
    assert result.status == MetricStatus.NO_DATA
    assert "Prometheus at http://127.0.0.1" in result.message
