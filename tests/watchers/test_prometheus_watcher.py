"""The Prometheus watcher against the real Prometheus: queries per interval, no-data samples.

The rollouts here are stand-in canary workflows (``tests/watchers/standin.py``) that sit in
``Progressing``, so the count does not depend on 50 real rollouts being at the right step.
Queries are counted twice: by the watcher, and by Prometheus itself
(``prometheus_http_requests_total{handler="/api/v1/query"}``).
"""

from __future__ import annotations

import operator
import re
import socket
import urllib.request
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from models.canary_watch import METRIC_SAMPLES_ANNOTATION
from models.operator import EventEnvelope
from models.promql import MetricQuery
from tests.watchers.standin import RECORDED_QUERY
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    running,
    settings,
)
from watchers.prometheus.queries import BUILTIN_QUERIES, Wanted, plan, shareable
from watchers.prometheus.watcher import PrometheusWatcher
from watchers.runner import Runner

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

OPTED_IN = {METRIC_SAMPLES_ANNOTATION: "true"}
TWO_METRICS: dict[str, Any] = {
    "interval": "30s",
    "stepWeight": 10,
    "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"},
    ],
}
#: The background loop must not tick during a test: the tests call ``tick`` themselves.
NEVER = 3600.0


def served_queries(prometheus_url: str) -> float:
    """Instant queries Prometheus has answered so far, from its own /metrics."""
    text = urllib.request.urlopen(f"{prometheus_url}/metrics", timeout=5).read().decode()
    pattern = r'prometheus_http_requests_total\{[^}]*handler="/api/v1/query"[^}]*\} (\S+)'
    return sum(float(value) for value in re.findall(pattern, text))


def add_rollouts(cluster: Cluster, names: list[str], annotations: dict[str, str]) -> None:
    for name in names:
        cluster.create_deployment(deployment(name))
        cluster.create_canary(canary(name, analysis=TWO_METRICS, annotations=annotations))


def prometheus_of(runner: Runner) -> PrometheusWatcher:
    assert runner.current is not None and runner.current.prometheus is not None
    return runner.current.prometheus


async def active_targets(runner: Runner) -> int:
    if runner.current is None:  # not started yet
        return 0
    watcher = prometheus_of(runner)
    await watcher.directory.refresh()
    return watcher.active()[1]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_one_and_fifty_active_rollouts_cost_the_same_number_of_queries(
    cluster: Cluster,
    kube_api: client.ApiClient,
    temporal: Client,
    standin_queue: str,
    prometheus_url: str,
) -> None:
    watch = settings(cluster.namespace, prometheus=True, prometheus_url=prometheus_url)
    watch = watch.model_copy(update={"sample_interval_s": NEVER})
    names = [f"app-{index:02d}" for index in range(50)]
    counted: dict[int, tuple[int, float]] = {}

    async with running(watch, make_delivery(temporal, standin_queue), kube_api) as runner:
        for wanted, new in ((1, names[:1]), (50, names[1:])):
            add_rollouts(cluster, new, OPTED_IN)
            await eventually(lambda: active_targets(runner), partial(operator.eq, wanted))
            before = served_queries(prometheus_url)
            report = await prometheus_of(runner).tick(now())
            counted[wanted] = (report.queries, served_queries(prometheus_url) - before)
            assert report.targets == wanted
            assert report.samples == 2 * wanted  # two metrics each, fanned out

    print(f"\nqueries per interval (watcher, Prometheus): {counted}")
    assert counted[1] == counted[50] == (2, 2.0)


async def test_samples_of_a_rollout_without_traffic_say_no_data_at_their_evaluation_time(
    cluster: Cluster,
    kube_api: client.ApiClient,
    temporal: Client,
    standin_queue: str,
    prometheus_url: str,
) -> None:
    watch = settings(cluster.namespace, prometheus=True, prometheus_url=prometheus_url)
    watch = watch.model_copy(update={"sample_interval_s": NEVER})
    add_rollouts(cluster, ["quiet"], OPTED_IN)
    workflow_id = f"canary/{cluster.namespace}/quiet"
    at = now()

    async with running(watch, make_delivery(temporal, standin_queue), kube_api) as runner:
        await eventually(lambda: active_targets(runner), lambda n: n == 1)
        report = await prometheus_of(runner).tick(at)
        events = await eventually(
            lambda: recorded(temporal, workflow_id),
            lambda found: sum(e.type == "MetricSample" for e in found) == 2,
        )

    samples = {e.payload["name"]: e for e in events if e.type == "MetricSample"}
    assert report.no_data == 2 and report.delivered == 2
    assert set(samples) == {"request-success-rate", "request-duration"}
    for sample in samples.values():
        assert sample.payload["value"] is None  # explicit no data, not silence
        assert datetime.fromisoformat(sample.payload["at"]) == at


async def test_a_prometheus_outage_is_sent_as_no_data_never_as_silence(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"
    watch = settings(cluster.namespace, prometheus=True, prometheus_url=nobody, query_timeout_s=1)
    watch = watch.model_copy(update={"sample_interval_s": NEVER})
    add_rollouts(cluster, ["web"], OPTED_IN)

    async with running(watch, make_delivery(temporal, standin_queue), kube_api) as runner:
        await eventually(lambda: active_targets(runner), lambda n: n == 1)
        report = await prometheus_of(runner).tick(now())

    assert report.queries == 2
    assert report.samples == report.no_data == report.delivered == 2


async def test_a_rollout_that_did_not_opt_in_is_not_sampled(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, standin_queue: str
) -> None:
    watch = settings(cluster.namespace, prometheus=True)
    watch = watch.model_copy(update={"sample_interval_s": NEVER})
    add_rollouts(cluster, ["plain"], {})
    workflow_id = f"canary/{cluster.namespace}/plain"

    async with running(watch, make_delivery(temporal, standin_queue), kube_api) as runner:
        await eventually(lambda: recorded(temporal, workflow_id), lambda found: len(found) == 1)
        assert await active_targets(runner) == 0


async def recorded(temporal: Client, workflow_id: str) -> list[EventEnvelope]:
    try:
        handle = temporal.get_workflow_handle(workflow_id)
        found: list[EventEnvelope] = await handle.query(
            RECORDED_QUERY, result_type=list[EventEnvelope]
        )
    except Exception:
        return []
    return found


def test_rollouts_sharing_a_template_share_one_query_and_others_get_their_own() -> None:
    def wanted(name: str, template: str, namespace: str = "shop") -> Wanted:
        return Wanted(
            f"canary/{namespace}/{name}", "m", MetricQuery(template, namespace, name, name, "1m")
        )

    grouped_custom = (
        "sum by (destination_workload_namespace, destination_workload) "
        '(rate(errors_total{destination_workload_namespace="{{ namespace }}",'
        'destination_workload="{{ target }}"}[{{ interval }}]))'
    )
    per_target = 'sum(rate(errors_total{service="{{ service }}"}[{{ interval }}]))'
    items = [
        wanted("a", BUILTIN_QUERIES["request-success-rate"]),
        wanted("b", BUILTIN_QUERIES["request-success-rate"], "pay"),
        wanted("c", grouped_custom),
        wanted("d", grouped_custom),
        wanted("e", per_target),
        wanted("f", per_target),
    ]

    queries = plan(items)

    assert shareable(grouped_custom) and not shareable(per_target)
    assert len(queries) == 4  # builtin (a, b), custom (c, d), then e and f alone
    builtin = next(q for q in queries if len(q.members) == 2 and "istio" in q.promql)
    assert 'destination_workload=~"a|b"' in builtin.promql
    assert 'destination_workload_namespace=~"pay|shop"' in builtin.promql
    series = [
        {
            "metric": {"destination_workload_namespace": "shop", "destination_workload": "a"},
            "value": [0, "99.5"],
        },
        {
            "metric": {"destination_workload_namespace": "pay", "destination_workload": "b"},
            "value": [0, "NaN"],
        },
    ]
    values = {m.target: v for m, v in builtin.fan_out(series).items()}
    assert values == {"a": 99.5, "b": None}


def test_a_dotted_workload_name_is_matched_literally() -> None:
    item = Wanted(
        "canary/shop/web.v2",
        "m",
        MetricQuery(BUILTIN_QUERIES["request-duration"], "shop", "web.v2", "web", "1m"),
    )

    (query,) = plan([item])

    assert 'destination_workload=~"web\\\\.v2"' in query.promql
