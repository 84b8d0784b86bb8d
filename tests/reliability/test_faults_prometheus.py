"""Faults between the worker and the real Prometheus: a check gets its value, or no data.

The canary's checks query through the project's one Prometheus client factory; a fault
that outlasts its one quick retry is "no data" (never a pass), and what no data means is the
metric's ``noData`` policy. Network faults come from a real Toxiproxy in front of
Prometheus, the answers (429 with ``Retry-After``, 500, 503) from the fault injector.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from temporalio.testing import ActivityEnvironment

from activities.canary import metrics
from devcluster.fault_injector import FaultInjector, Rule
from devcluster.toxiproxy import UPSTREAM
from models.canary import AnalysisOutcome, CanarySpec, MetricResult, MetricStatus
from models.operator import Target
from service.http_retry import PROMETHEUS
from tests.canary.cluster import step_for
from tests.canary.specs import make_spec
from tests.fixtures.faults import RetryCounters, ToxicPath

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.faults,
    pytest.mark.usefixtures("no_workflow_left_running"),
]

#: A query Prometheus always answers, with a value that passes ``min: 99``.
QUERY = "vector(99.5)"
QUERY_PATH = "/api/v1/query"


def spec_with(no_data: str = "hold") -> CanarySpec:
    metric = {
        "name": "success-rate",
        "query": QUERY,
        "thresholdRange": {"min": 99},
        "interval": "1m",
        "noData": no_data,
        "minSampleCount": 0,
    }
    return make_spec(metrics=[metric])


async def check(namespace: str, spec: CanarySpec | None = None) -> MetricResult:
    spec = spec or spec_with()
    target = Target(namespace=namespace, name="podinfo")
    return await metrics.check(spec.analysis.metrics[0], spec, target)


def gaps(injector: FaultInjector) -> list[float]:
    times = [seen.at for seen in injector.requests(path=QUERY_PATH)]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.fixture
def quick_queries(monkeypatch) -> float:
    """Queries time out after 1 s (5 s in the product) so a silent Prometheus is quick."""
    monkeypatch.setattr(metrics, "QUERY_TIMEOUT", 1.0)
    return 1.0


# -- network faults (Toxiproxy) ---------------------------------------------------------------


async def test_latency_delays_a_check_but_its_value_arrives_and_passes(
    namespace, prometheus_through_toxiproxy: ToxicPath
):
    counters = RetryCounters("prometheus")
    proxy = prometheus_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "latency", {"latency": 300})

    started = time.monotonic()
    result = await check(namespace)

    assert result.status == MetricStatus.PASS and result.value == 99.5
    assert time.monotonic() - started >= 0.3
    assert counters.retries() == 0


async def test_a_bandwidth_limit_delays_a_check_but_its_value_arrives_and_passes(
    namespace, prometheus_through_toxiproxy: ToxicPath
):
    proxy = prometheus_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "bandwidth", {"rate": 1})  # KB/s

    result = await check(namespace)

    assert result.status == MetricStatus.PASS and result.value == 99.5


async def test_a_silent_prometheus_is_no_data_after_one_retry_not_a_hang(
    namespace, prometheus_through_toxiproxy: ToxicPath, quick_queries: float
):
    counters = RetryCounters("prometheus")
    proxy = prometheus_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "timeout", {"timeout": 0})

    started = time.monotonic()
    result = await check(namespace)
    took = time.monotonic() - started

    assert result.status == MetricStatus.NO_DATA and result.value is None
    assert "failed" in result.message
    assert counters.retries() == PROMETHEUS.retries
    assert counters.exhausted() == 1
    assert 2 * quick_queries <= took < 2 * quick_queries + 2  # two attempts, then no data


async def test_resets_are_no_data_and_the_next_check_after_them_passes(
    namespace, prometheus_through_toxiproxy: ToxicPath
):
    counters = RetryCounters("prometheus")
    proxy = prometheus_through_toxiproxy
    toxic = proxy.toxiproxy.add_toxic(proxy.proxy, "reset_peer", {"timeout": 0}, stream=UPSTREAM)

    during = await check(namespace)
    proxy.toxiproxy.remove_toxic(proxy.proxy, toxic)
    after = await check(namespace)

    assert during.status == MetricStatus.NO_DATA
    assert after.status == MetricStatus.PASS
    assert counters.retries() == PROMETHEUS.retries and counters.exhausted() == 1
    assert counters.waited_s() > 0


async def test_a_reset_that_ends_within_the_retry_loses_nothing(
    namespace, prometheus_through_toxiproxy: ToxicPath, monkeypatch
):
    proxy = prometheus_through_toxiproxy
    toxic = proxy.toxiproxy.add_toxic(proxy.proxy, "reset_peer", {"timeout": 0}, stream=UPSTREAM)
    # The retry waits 50 to 100 ms; the fault is gone after 20.
    timer = threading.Timer(0.02, lambda: proxy.toxiproxy.remove_toxic(proxy.proxy, toxic))
    timer.start()
    try:
        result = await check(namespace)
    finally:
        timer.join()

    assert result.status == MetricStatus.PASS, result.message


# -- answers (the fault injector) -------------------------------------------------------------


async def test_one_503_is_retried_once_after_a_backoff_and_the_check_passes(
    namespace, prometheus_through_injector: FaultInjector
):
    counters = RetryCounters("prometheus")
    prometheus_through_injector.add(Rule(503, path=QUERY_PATH, times=1))

    result = await check(namespace)

    assert result.status == MetricStatus.PASS, result.message
    assert [seen.status for seen in prometheus_through_injector.requests(path=QUERY_PATH)] == [
        503,
        200,
    ]
    assert gaps(prometheus_through_injector)[0] >= PROMETHEUS.backoff_s / 2
    assert counters.retries("503") == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_a_prometheus_that_keeps_failing_is_no_data_after_exactly_two_requests(
    namespace, prometheus_through_injector: FaultInjector, status: int
):
    counters = RetryCounters("prometheus")
    prometheus_through_injector.add(Rule(status, path=QUERY_PATH, times=100))

    result = await check(namespace)

    assert result.status == MetricStatus.NO_DATA
    assert len(prometheus_through_injector.requests(path=QUERY_PATH)) == 2
    assert counters.retries(str(status)) == 1 and counters.exhausted(str(status)) == 1


async def test_429_is_retried_after_its_retry_after(
    namespace, prometheus_through_injector: FaultInjector
):
    counters = RetryCounters("prometheus")
    rule = Rule(429, path=QUERY_PATH, times=1, headers={"Retry-After": "1"})
    prometheus_through_injector.add(rule)

    result = await check(namespace)

    assert result.status == MetricStatus.PASS, result.message
    (wait,) = gaps(prometheus_through_injector)
    assert 1.0 <= wait < 1.5
    assert counters.waited_s("429") >= 1.0


async def test_429_asking_for_longer_than_an_interval_allows_is_no_data_at_once(
    namespace, prometheus_through_injector: FaultInjector
):
    counters = RetryCounters("prometheus")
    rule = Rule(429, path=QUERY_PATH, times=1, headers={"Retry-After": "60"})
    prometheus_through_injector.add(rule)

    started = time.monotonic()
    result = await check(namespace)

    assert result.status == MetricStatus.NO_DATA
    assert time.monotonic() - started < 1.0
    assert len(prometheus_through_injector.requests(path=QUERY_PATH)) == 1
    assert counters.exhausted("retry_after_above_cap") == 1


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        ("hold", AnalysisOutcome.NO_DATA),
        ("fail", AnalysisOutcome.FAILED),
        ("pass", AnalysisOutcome.PASSED),
    ],
)
async def test_an_analysis_during_a_prometheus_outage_follows_the_no_data_policy(
    namespace, prometheus_through_injector: FaultInjector, policy: str, outcome: AnalysisOutcome
):
    prometheus_through_injector.add(Rule(503, path=QUERY_PATH, times=100))
    step = step_for(spec_with(policy), namespace, "Progressing")

    result = await ActivityEnvironment().run(metrics.analyse, step)

    (metric,) = result.metrics
    assert metric.status == MetricStatus.NO_DATA and metric.no_data == policy
    assert result.outcome == outcome
