"""End-to-end reaction: the canary's first failing request to weight 0, leg by leg.

``bench/canary_latency.py`` times only the decision (sample signal in, weight 0 out). Users
feel the whole chain, so this times it from the data plane on, on a local cluster of its own,
with the watchers and a worker running in this process as in production:

1. **fault → first failing request**: the simulator's error-rate annotation is put on the
   canary Deployment's metadata (no new revision); the first 5xx the simulator counts for
   it (its ``/metrics``, read every 20 ms). Not in the reaction: it is how soon the
   simulator's next tick (1 s) plays the fault;
2. **→ scraped**: Prometheus's own timestamp of the first scrape that holds that 5xx;
3. **→ queried**: the Prometheus watcher's evaluation instant (``at`` of the first failing
   ``MetricSample``, an interval boundary), minus the scrape;
4. **→ signalled**: the sample's ``WorkflowExecutionSignaled`` event, minus ``at``;
5. **→ decided**: the workflow task that took the sample completing (its
   ``WorkflowTaskCompleted`` event), minus the signal;
6. **→ weight 0**: a watch on the VirtualService seeing the canary at weight 0.

The reaction is legs 2 to 6, from the first failing request. Flagger reacts after at least
``threshold`` times ``interval`` (at least 10 s); the target here is one scrape interval plus one
query interval plus 100 ms at p99, and a decision leg under 100 ms.

Each round: the rollout is at weight 10 with clean samples, the fault goes on (at a random
phase against the scrape, the simulator's tick and the watcher's interval), the canary is
rolled back; then the fault goes off, the bench waits until the metric's window holds no
error, and ``retry`` starts the revision again.

Run::

    python -m bench.reaction --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kubernetes import client, watch
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.scale import counter_sum, quantile
from devcluster.dataplane_sim.annotations import ERROR_RATE
from models.canary_watch import METRIC_SAMPLES_ANNOTATION
from models.operator import (
    COMMAND_UPDATE,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    EventEnvelope,
    OperatorStatus,
)
from tests.chaos.lateness import event_seconds

APP = "reaction-app"
#: Seconds of the success-rate window the watcher queries.
WINDOW_S = 5
ANALYSIS: dict[str, Any] = {
    "interval": "1h",  # no analysis runs: only a sample can roll back
    "threshold": 1,
    "stepWeight": 10,
    "maxWeight": 50,
    "metrics": [
        {
            "name": "request-success-rate",
            "thresholdRange": {"min": 99},
            "interval": f"{WINDOW_S}s",
            "noData": "pass",
        }
    ],
}


@dataclass
class Round:
    """One reaction's wall-clock instants (``time.time()`` and the servers' own clocks)."""

    fault: float
    failing: float
    scraped: float
    queried: float
    signalled: float
    decided: float
    zero: float

    def legs(self) -> dict[str, float]:
        return {
            "fault -> first failing request": self.failing - self.fault,
            "-> scraped": self.scraped - self.failing,
            "-> queried": self.queried - self.scraped,
            "-> signalled": self.signalled - self.queried,
            "-> decided": self.decided - self.signalled,
            "-> weight 0": self.zero - self.decided,
            "reaction (first failing request -> weight 0)": self.zero - self.failing,
        }


class Weights(threading.Thread):
    """The canary weight of an app's VirtualService, and when it last became 0 (``time.time()``).

    Also the decision benchmark's (``bench/canary_latency.py``) watch.
    """

    def __init__(self, api: client.ApiClient, namespace: str, app: str = APP) -> None:
        super().__init__(daemon=True)
        self.api, self.namespace, self.app = api, namespace, app
        self.weight: int | None = None
        self.zero_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        version = None
        while not self.stop.is_set():
            try:
                stream = watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    "networking.istio.io",
                    "v1",
                    self.namespace,
                    "virtualservices",
                    field_selector=f"metadata.name={self.app}",
                    resource_version=version,
                    timeout_seconds=5,
                )
                for event in stream:
                    seen = time.time()
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    routes = obj["spec"]["http"][0]["route"]
                    weights = {r["destination"]["host"]: r.get("weight", 0) for r in routes}
                    canary = weights.get(f"{self.app}-canary")
                    if canary == 0 and self.weight != 0:
                        self.zero_at = seen
                    self.weight = canary
            except Exception:  # a watch that expired or broke: start again from the start
                version = None
                time.sleep(0.1)


def failing_requests(text: str) -> float:
    """The app's 5xx count in the simulator's Istio counters (Prometheus text format)."""
    labels = rf'(?=.*destination_workload="{APP}")(?=.*response_code="5\d\d")'
    return counter_sum(text, "istio_requests_total", labels)


def read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def until(what: str, check: Any, timeout_s: float = 120.0, pause_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(pause_s)
    raise TimeoutError(f"timed out waiting for {what}")


def first_scrape_with_errors(prometheus: str, namespace: str, after: float) -> float | None:
    """Prometheus's timestamp of the first scrape after ``after`` in which one of the app's
    5xx series grew (or appeared), from the raw samples of the last 30 s."""
    selector = (
        f'istio_requests_total{{destination_workload="{APP}",'
        f'destination_workload_namespace="{namespace}",response_code=~"5.."}}[30s]'
    )
    body = json.loads(read(f"{prometheus}/api/v1/query?query={quote(selector)}"))
    firsts = []
    for series in body["data"]["result"]:
        previous: float | None = None
        for stamp, raw in series["values"]:
            value = float(raw)
            if float(stamp) > after and (previous is None or value > previous):
                firsts.append(float(stamp))
                break
            previous = value
    return min(firsts) if firsts else None


async def decision_instants(
    handle: WorkflowHandle[Any, Any], temporal: Client, after: float
) -> tuple[float, float, float]:
    """(``at`` of the first failing sample signalled after ``after``, its signal's time, the
    completion of the workflow task that took it)."""
    events = [event async for event in handle.fetch_history_events()]
    for index, event in enumerate(events):
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            continue
        if event_seconds(event) < after:
            continue
        payloads = event.workflow_execution_signaled_event_attributes.input.payloads
        (envelope,) = await temporal.data_converter.decode(payloads, [EventEnvelope])
        value = envelope.payload.get("value") if envelope.type == "MetricSample" else None
        if value is None or value >= 99:
            continue
        at = datetime.fromisoformat(envelope.payload["at"]).timestamp()
        completed = next(
            e
            for e in events[index:]
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        return at, event_seconds(event), event_seconds(completed)
    raise RuntimeError("no failing MetricSample in the run's history after the fault")


async def measure(rounds: int, sample_interval_s: float, state_dir: Path) -> list[Round]:
    from activities import kube as activities_kube
    from activities.canary import ACTIVITIES
    from devcluster.cluster import DevCluster
    from devcluster.state import Ports
    from tests.watchers.support import Cluster, canary, deployment, make_delivery, settings
    from watchers.runner import Runner
    from worker_main import make_worker
    from workflows.canary import CanaryWorkflow

    ports = Ports.all_free()
    cluster = DevCluster(state_dir, ports)
    cluster.up()
    try:
        env = cluster.env()
        os.environ.update(env)
        activities_kube.api_client.cache_clear()
        sim_metrics = f"http://127.0.0.1:{cluster.ports['sim']}/metrics"
        prometheus = env["PROMETHEUS_URL"].rstrip("/")
        api = cluster.admin_api_client()
        namespace = f"reaction-{uuid.uuid4().hex[:6]}"
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        kube = Cluster(api, namespace)
        kube.create_deployment(deployment(APP, replicas=1))
        kube.create_canary(
            canary(APP, analysis=ANALYSIS, annotations={METRIC_SAMPLES_ANNOTATION: "true"})
        )
        temporal = await Client.connect(
            env["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
        )
        queue = f"reaction-{uuid.uuid4().hex[:6]}"
        # The latest run (no run ID): each rollout the watchers start is a new one.
        handle = temporal.get_workflow_handle(f"canary/{namespace}/{APP}")
        watch_settings = settings(
            namespace,
            prometheus=True,
            sample_interval_s=sample_interval_s,
            prometheus_url=prometheus,
        )
        weights = Weights(api, namespace)
        weights.start()
        results: list[Round] = []
        runner = Runner(watch_settings, make_delivery(temporal, queue), api=api)
        stop = asyncio.Event()
        async with make_worker(temporal, queue, [CanaryWorkflow], ACTIVITIES):
            watchers = asyncio.create_task(runner.run(stop))
            try:

                async def state() -> str:
                    try:
                        status = await handle.query(STATUS_QUERY, result_type=OperatorStatus)
                    except Exception:
                        return ""
                    return status.state

                await until("the bootstrap", lambda: _done(state, "Succeeded"), 180, 0.2)
                kube.set_image(APP, "podinfo:6.6.0")
                for number in range(rounds):
                    await until("weight 10", lambda: weights.weight == 10, 180)
                    # Clean samples first, then a random phase against the scrape, the tick
                    # and the watcher's interval, so the legs are not locked in step.
                    await asyncio.sleep(2 * sample_interval_s + random.uniform(0, 2))
                    now_in = await state()
                    if now_in != "Progressing":
                        raise RuntimeError(f"the canary is {now_in}, not Progressing")
                    counted = [failing_requests(await asyncio.to_thread(read, sim_metrics))]
                    fault = time.time()
                    _annotate(kube, "0.5")

                    async def failing_seen(counted: list[float] = counted) -> float | None:
                        # Any growth: the simulator forgets the series of a workload that
                        # was gone (the canary scaled to 0), so a count may start again.
                        now = failing_requests(await asyncio.to_thread(read, sim_metrics))
                        grew, counted[0] = now > counted[0], now
                        return time.time() if grew else None

                    failing = await until("the first failing request", failing_seen, 30)
                    await until(
                        "weight 0",
                        lambda fault=fault: (weights.zero_at or 0.0) > fault,
                        60,
                    )
                    scraped = await asyncio.to_thread(
                        first_scrape_with_errors, prometheus, namespace, fault
                    )
                    at, signalled, decided = await decision_instants(handle, temporal, fault)
                    result = Round(
                        fault=fault,
                        failing=failing,
                        scraped=scraped or float("nan"),
                        queried=at,
                        signalled=signalled,
                        decided=decided,
                        zero=weights.zero_at or float("nan"),
                    )
                    results.append(result)
                    print(
                        f"round {number + 1}: "
                        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.legs().items()),
                        flush=True,
                    )
                    _annotate(kube, None)
                    await until("Failed", lambda: _done(state, "Failed"), 60, 0.1)
                    if number + 1 < rounds:
                        # The window must hold no error of this round, or the retried canary
                        # fails on its first sample.
                        await asyncio.sleep(WINDOW_S + 2 * sample_interval_s)
                        await handle.execute_update(
                            COMMAND_UPDATE,
                            CommandRequest(command="retry", by="bench"),
                            result_type=CommandReceipt,
                        )
            finally:
                stop.set()
                await asyncio.wait_for(watchers, 60)
                weights.stop.set()
                await handle.terminate("benchmark done")
        return results
    finally:
        cluster.down()


async def _done(state: Any, wanted: str) -> bool:
    return bool(await state() == wanted)


def _annotate(kube: Any, rate: str | None) -> None:
    body: Any = {"metadata": {"annotations": {ERROR_RATE.key: rate}}}
    kube.apps.patch_namespaced_deployment(APP, kube.namespace, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reaction", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--sample-interval", type=float, default=2.0, help="the Prometheus watcher's interval (s)"
    )
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="autopilot-reaction-"))
    results = asyncio.run(measure(args.rounds, args.sample_interval, state))
    print(
        f"{len(results)} rounds; Prometheus scrape interval 1 s, watcher interval "
        f"{args.sample_interval:g} s, simulator tick 1 s"
    )
    print("| leg | p50 | p99 | max |")
    print("|---|---|---|---|")
    for leg in results[0].legs():
        values = [r.legs()[leg] * 1000 for r in results]
        print(
            f"| {leg} | {statistics.median(values):.0f} ms | {quantile(values, 0.99):.0f} ms "
            f"| {max(values):.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
