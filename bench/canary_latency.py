"""Decision latency of the canary operator: failing sample in, canary weight 0 out.

What is measured: the time from the moment a failing metric sample is handed to the
workflow (the ``MetricSample`` signal the Prometheus watcher sends) to the moment the live
VirtualService, watched through the API server, shows the canary at weight 0. That covers
the signal, the workflow task that decides, the rollback activity (read the VirtualService,
write it back) and the watch event. It does not include the watcher's own query (one
Prometheus round trip, a few milliseconds locally); ``bench/reaction.py`` times the whole
chain, from the canary's first failing request, leg by leg.

How: one app on the local cluster, a canary with ``threshold: 1`` and a one-hour interval
(so only the sample can trigger the rollback), a worker in this process. Each round:
``retry`` the failed revision, wait until weight 10 is on the VirtualService, send a sample
of 10% success rate, time until weight 0. Median and p99 over all rounds.

Run::

    eval "$(autopilot dev env)"            # or nothing: a temporary cluster is started
    python -m bench.canary_latency --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from activities import kube as activities_kube
from activities.canary import ACTIVITIES
from bench.cluster import bench_cluster
from bench.reaction import Weights
from cli.kube import new_revision_patch
from models.operator import (
    COMMAND_UPDATE,
    EVENT_SIGNAL,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    EventEnvelope,
    OperatorInput,
    OperatorStatus,
    Target,
)
from worker_main import make_worker
from workflows.canary import CanaryWorkflow

APP = "bench-app"


def _deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


SPEC = {
    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
    "service": {"port": 9898},
    "analysis": {
        "interval": "1h",
        "threshold": 1,
        "stepWeight": 10,
        "maxWeight": 50,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    },
}


async def _status(handle: WorkflowHandle[Any, Any]) -> OperatorStatus:
    return await handle.query(STATUS_QUERY, result_type=OperatorStatus)


async def _until(handle: WorkflowHandle[Any, Any], check: Any, what: str) -> OperatorStatus:
    for _ in range(3000):
        status = await _status(handle)
        if check(status):
            return status
        await asyncio.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


async def run(rounds: int, env: dict[str, str]) -> list[float]:
    """Measure ``rounds`` decisions; return their latencies in seconds."""
    os.environ.update(env)
    activities_kube.api_client.cache_clear()
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    namespace = f"bench-{secrets.token_hex(3)}"
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    first: Any = _deployment("podinfo:1")  # the client takes plain JSON too
    apps.create_namespaced_deployment(namespace, first)
    temporal = await Client.connect(env["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    target = Target(namespace=namespace, name=APP)
    latencies: list[float] = []
    async with make_worker(temporal, queue, [CanaryWorkflow], ACTIVITIES):

        async def start() -> WorkflowHandle[Any, Any]:
            return await temporal.start_workflow(
                "canary",
                OperatorInput(target=target, spec=SPEC),
                id=target.workflow_id("canary"),
                task_queue=queue,
                result_type=OperatorStatus,
            )

        await (await start()).result()  # bootstrap: the primary is created
        revision: Any = new_revision_patch("app", "podinfo:2")
        apps.patch_namespaced_deployment(APP, namespace, revision)
        handle = await start()
        zero = Weights(api, namespace, APP)
        zero.start()
        try:
            for index in range(rounds):
                if index:
                    await handle.execute_update(
                        COMMAND_UPDATE,
                        CommandRequest(command="retry", by="bench"),
                        result_type=CommandReceipt,
                    )
                await _until(
                    handle,
                    lambda s: s.state == "Progressing" and s.data["applied_weights"][-1:] == [10],
                    "weight 10",
                )
                sent = time.time()
                sample = EventEnvelope(
                    id=f"sample-{index}",
                    type="MetricSample",
                    payload={
                        "name": "request-success-rate",
                        "value": 10.0,
                        "at": datetime.now(UTC).isoformat(),
                    },
                    source="bench",
                )
                await handle.signal(EVENT_SIGNAL, sample)
                await _until(handle, lambda s: s.state == "Failed", "Failed")
                for _ in range(500):
                    if (zero.zero_at or 0.0) > sent:
                        break
                    await asyncio.sleep(0.01)
                assert zero.zero_at is not None and zero.zero_at > sent, "no weight 0 seen"
                latencies.append(zero.zero_at - sent)
        finally:
            zero.stop.set()
            await handle.terminate("benchmark done")
    core.delete_namespace(namespace)
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with bench_cluster("canary-bench-") as env:
        latencies = asyncio.run(run(args.rounds, env))
    ms = [x * 1000 for x in latencies]
    print(f"rounds: {len(ms)}")
    print(f"median: {statistics.median(ms):.0f} ms")
    print(f"p99:    {_percentile(ms, 0.99):.0f} ms")
    print(f"max:    {max(ms):.0f} ms")


if __name__ == "__main__":
    main()
