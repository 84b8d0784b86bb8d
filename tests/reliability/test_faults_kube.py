"""Faults between the worker and the real API server: the canary's calls still end right.

Network faults come from a real Toxiproxy in front of kube-apiserver (latency, resets, a
silent server, a bandwidth limit); the answers a controller must survive (409, 429 with
``Retry-After``, 500, 503) from the fault injector in front of it. Every call goes through
the product's one client factory and its one retry policy, whose counters show the retries
are bounded and backed off.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid
from datetime import timedelta

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities import kube
from activities.canary import lifecycle
from activities.kube.calls import KUBERNETES_THROTTLED, to_thread
from devcluster.fault_injector import FaultInjector, Rule
from devcluster.toxiproxy import UPSTREAM
from models.canary import CanarySpec, CanaryStep, Initialized
from service import http_retry
from service.http_retry import KUBE
from tests.canary.cluster import (
    app_deployment,
    create_app,
    new_revision,
    step_for,
    virtual_service,
    weights,
)
from tests.canary.specs import make_spec
from tests.fixtures.faults import RetryCounters, ToxicPath

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.faults,
    pytest.mark.usefixtures("no_workflow_left_running"),
]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"


async def run(activity, spec: CanarySpec, namespace: str, state: str = "Initializing", **data):
    return await ActivityEnvironment().run(activity, step_for(spec, namespace, state, **data))


def config_map(kube_api: client.ApiClient, namespace: str, name: str, size: int = 10) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"d": "x" * size})
    client.CoreV1Api(kube_api).create_namespaced_config_map(namespace, body)


async def read_config_map(namespace: str, name: str) -> client.V1ConfigMap:
    """One read through the product's client, as an activity makes it."""
    return await to_thread(kube.core().read_namespaced_config_map, name, namespace)


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def gaps(injector: FaultInjector, method: str, path: str) -> list[float]:
    times = [seen.at for seen in injector.requests(method, path)]
    return [b - a for a, b in itertools.pairwise(times)]


# -- network faults (Toxiproxy) ---------------------------------------------------------------


async def test_latency_slows_a_canary_initialisation_but_it_ends_correctly_without_retries(
    kube_api, namespace, kube_through_toxiproxy: ToxicPath
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    counters = RetryCounters("kube")
    proxy = kube_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "latency", {"latency": 100, "jitter": 20})

    started = time.monotonic()
    result = await run(lifecycle.initialize, make_spec(), namespace)
    took = time.monotonic() - started

    assert result.bootstrapped
    assert weights(virtual_service(kube_api, namespace, "podinfo")) == {
        "podinfo-primary": 100,
        "podinfo-canary": 0,
    }
    print(f"initialize through 100 ms latency: {took:.2f}s")
    assert took > 0.5  # a dozen calls, each 100 ms late at least
    assert counters.retries() == 0


async def test_connection_resets_are_retried_with_backoff_until_the_api_server_answers(
    kube_api, namespace, kube_through_toxiproxy: ToxicPath
):
    config_map(kube_api, namespace, "settings")
    counters = RetryCounters("kube")
    proxy = kube_through_toxiproxy
    toxic = proxy.toxiproxy.add_toxic(proxy.proxy, "reset_peer", {"timeout": 0}, stream=UPSTREAM)
    timer = later(0.5, lambda: proxy.toxiproxy.remove_toxic(proxy.proxy, toxic))

    try:
        found = await read_config_map(namespace, "settings")
    finally:
        timer.cancel()

    assert found.data == {"d": "x" * 10}
    print(f"resets: {counters.retries():.0f} retries, {counters.waited_s():.2f}s waited")
    assert 1 <= counters.retries() <= KUBE.retries
    assert counters.waited_s() > 0.2
    assert counters.exhausted() == 0


async def test_a_silent_api_server_fails_the_call_after_the_request_timeout_and_four_retries(
    kube_api, namespace, kube_through_toxiproxy: ToxicPath, monkeypatch
):
    config_map(kube_api, namespace, "settings")
    monkeypatch.setenv("AUTOPILOT_KUBE_REQUEST_TIMEOUT_S", "0.5")
    kube.api_client.cache_clear()
    counters = RetryCounters("kube")
    proxy = kube_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "timeout", {"timeout": 0})

    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)time"):
        await read_config_map(namespace, "settings")
    took = time.monotonic() - started

    print(f"silent API server: failed after {took:.2f}s, {counters.waited_s():.2f}s waited")
    assert counters.retries() == KUBE.retries
    assert counters.exhausted() == 1
    assert counters.waited_s() > 0.5
    assert 2.5 <= took < 10  # five attempts of 0.5 s, backed off; never hung
    proxy.toxiproxy.reset()
    assert (await read_config_map(namespace, "settings")).data == {"d": "x" * 10}


async def test_a_bandwidth_limit_slows_a_large_read_but_it_arrives_whole(
    kube_api, namespace, kube_through_toxiproxy: ToxicPath
):
    config_map(kube_api, namespace, "large", size=60_000)
    counters = RetryCounters("kube")
    proxy = kube_through_toxiproxy
    proxy.toxiproxy.add_toxic(proxy.proxy, "bandwidth", {"rate": 40})  # KB/s

    started = time.monotonic()
    found = await read_config_map(namespace, "large")
    took = time.monotonic() - started

    assert found.data == {"d": "x" * 60_000}
    print(f"60 KB read at 40 KB/s: {took:.2f}s")
    assert took > 1.0  # 60 KB at 40 KB/s
    assert counters.retries() == 0


# -- answers (the fault injector) -------------------------------------------------------------


async def test_429_is_retried_only_after_the_retry_after_the_api_server_asked_for(
    kube_api, namespace, kube_through_injector: FaultInjector
):
    config_map(kube_api, namespace, "settings")
    counters = RetryCounters("kube")
    path = f"/namespaces/{namespace}/configmaps/settings"
    kube_through_injector.add(Rule(429, "GET", path, times=2, headers={"Retry-After": "1"}))

    found = await read_config_map(namespace, "settings")

    assert found.data == {"d": "x" * 10}
    waits = gaps(kube_through_injector, "GET", path)
    print(f"429 Retry-After 1: gaps {[round(wait, 3) for wait in waits]}")
    assert len(waits) == 2
    assert all(1.0 <= wait < 1.5 for wait in waits), waits
    assert counters.retries("429") == 2
    assert counters.waited_s("429") >= 2.0


async def test_a_429_asking_for_longer_than_the_cap_is_handed_to_temporal_at_once(
    kube_api, namespace, kube_through_injector: FaultInjector
):
    config_map(kube_api, namespace, "settings")
    counters = RetryCounters("kube")
    path = f"/namespaces/{namespace}/configmaps/settings"
    kube_through_injector.add(Rule(429, "GET", path, times=1, headers={"Retry-After": "30"}))

    started = time.monotonic()
    with pytest.raises(ApplicationError) as raised:
        await read_config_map(namespace, "settings")

    assert time.monotonic() - started < 1.0  # not slept through in a thread
    assert raised.value.type == KUBERNETES_THROTTLED
    assert raised.value.next_retry_delay == timedelta(seconds=30)
    assert len(kube_through_injector.requests("GET", path)) == 1
    assert counters.exhausted("retry_after_above_cap") == 1


async def test_a_create_answered_429_is_sent_again_since_the_server_did_not_process_it(
    namespace, kube_through_injector: FaultInjector
):
    path = f"/namespaces/{namespace}/configmaps"
    kube_through_injector.add(Rule(429, "POST", path, times=1, headers={"Retry-After": "1"}))
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="created"), data={"a": "b"})

    await to_thread(kube.core().create_namespaced_config_map, namespace, body)

    posts = kube_through_injector.requests("POST", path)
    assert [seen.status for seen in posts] == [429, 201]
    assert posts[1].at - posts[0].at >= 1.0


async def test_503_on_a_read_is_retried_four_times_with_growing_backoff_then_given_up(
    kube_api, namespace, kube_through_injector: FaultInjector
):
    config_map(kube_api, namespace, "settings")
    counters = RetryCounters("kube")
    path = f"/namespaces/{namespace}/configmaps/settings"
    kube_through_injector.add(Rule(503, "GET", path, times=100))

    with pytest.raises(ApiException) as raised:
        await read_config_map(namespace, "settings")

    assert raised.value.status == 503
    waits = gaps(kube_through_injector, "GET", path)
    print(f"503 on every read: gaps {[round(wait, 3) for wait in waits]}")
    assert len(waits) == KUBE.retries  # five attempts in all, then the answer is the caller's
    assert waits == sorted(waits) and waits[0] >= KUBE.backoff_s / 2, waits
    assert counters.retries("503") == KUBE.retries
    assert counters.exhausted("503") == 1
    assert counters.waited_s("503") >= sum(waits) * 0.9


async def test_500_on_a_create_is_not_sent_twice(namespace, kube_through_injector: FaultInjector):
    counters = RetryCounters("kube")
    path = f"/namespaces/{namespace}/configmaps"
    kube_through_injector.add(Rule(500, "POST", path, times=1))
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="once"), data={"a": "b"})

    with pytest.raises(ApiException) as raised:
        await to_thread(kube.core().create_namespaced_config_map, namespace, body)

    assert raised.value.status == 500
    assert len(kube_through_injector.requests("POST", path)) == 1
    assert counters.retries() == 0


async def test_409_and_500_on_a_weight_change_are_survived_and_the_weights_are_right(
    kube_api, namespace, kube_through_injector: FaultInjector
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    spec = make_spec()
    await run(lifecycle.initialize, spec, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    assert (await run(lifecycle.start, spec, namespace, "Starting")).ready
    counters = RetryCounters("kube")
    path = f"/namespaces/{namespace}/virtualservices/podinfo"
    kube_through_injector.add(Rule(409, "PUT", path, times=2, reason="the object has changed"))
    kube_through_injector.add(Rule(500, "PUT", path, times=1))

    applied = await run(lifecycle.set_weight, spec, namespace, "Progressing", canary_weight=20)

    assert (applied.primary, applied.canary) == (80, 20)
    assert weights(virtual_service(kube_api, namespace, "podinfo")) == {
        "podinfo-primary": 80,
        "podinfo-canary": 20,
    }
    puts = [seen.status for seen in kube_through_injector.requests("PUT", path)]
    assert puts == [409, 409, 500, 200]
    assert counters.retries("500") == 1  # a PUT is idempotent: the client sent it again
    assert counters.retries("409") == 0  # a conflict is the activity's: it read again


async def test_a_canary_rolls_out_and_back_correctly_through_throttling_and_server_errors(
    kube_api, namespace, kube_through_injector: FaultInjector
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    spec = make_spec()
    injector = kube_through_injector
    counters = RetryCounters("kube")
    injector.add(Rule(429, "GET", "/deployments/", times=2, headers={"Retry-After": "1"}))
    injector.add(Rule(503, "GET", "/virtualservices/", times=2))
    injector.add(Rule(503, "PUT", "/deployments/", times=1))
    injector.add(Rule(409, "PUT", "/virtualservices/", times=1))

    await run(lifecycle.initialize, spec, namespace)
    new_revision(kube_api, namespace, "podinfo", V2)
    second = await run(lifecycle.initialize, spec, namespace)
    assert (await run(lifecycle.start, spec, namespace, "Starting")).ready
    for weight in (10, 20):
        applied = await run(
            lifecycle.set_weight, spec, namespace, "Progressing", canary_weight=weight
        )
        assert applied.canary == weight
    await run(
        lifecycle.rollback,
        spec,
        namespace,
        "RollingBack",
        revision=second.revision,
        failure="request-success-rate 48 < 99",
    )

    assert weights(virtual_service(kube_api, namespace, "podinfo")) == {
        "podinfo-primary": 100,
        "podinfo-canary": 0,
    }
    injected = [seen for seen in injector.seen if seen.injected]
    assert len(injected) == 6  # every fault was met
    assert counters.retries() == 5 and counters.exhausted() == 0
    assert counters.waited_s("429") >= 2.0


@workflow.defn(name="faults-initialize")
class InitializeOnce:
    """Runs the canary's real ``initialize`` activity under a quick retry policy."""

    @workflow.run
    async def run(self, step: CanaryStep) -> Initialized:
        return await workflow.execute_activity(
            lifecycle.initialize,
            step,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=3
            ),
        )


@pytest.mark.temporal
async def test_throttling_that_outlasts_the_retries_makes_temporal_wait_the_retry_after(
    kube_api,
    namespace,
    kube_through_injector: FaultInjector,
    dev_server_env: WorkflowEnvironment,
    monkeypatch,
):
    # A cap of 0.5 s stands for the product's 10 s, so a 2 s Retry-After is handed to Temporal.
    monkeypatch.setattr(http_retry, "KUBE", dataclasses.replace(KUBE, retry_after_cap_s=0.5))
    kube.api_client.cache_clear()
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    path = f"/namespaces/{namespace}/deployments/podinfo"
    kube_through_injector.add(Rule(429, "GET", path, times=1, headers={"Retry-After": "2"}))
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    step = step_for(make_spec(), namespace)

    async with Worker(
        dev_server_env.client,
        task_queue=queue,
        workflows=[InitializeOnce],
        activities=[lifecycle.initialize],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await dev_server_env.client.execute_workflow(
            InitializeOnce.run, step, id=f"faults-{queue}", task_queue=queue
        )

    assert result.bootstrapped
    reads = kube_through_injector.requests("GET", path)
    assert [seen.status for seen in reads][:2] == [429, 200]
    print(
        f"KubernetesThrottled, Retry-After 2: next attempt {reads[1].at - reads[0].at:.2f}s later"
    )
    assert reads[1].at - reads[0].at >= 2.0  # Temporal's 100 ms retry gave way to Retry-After
