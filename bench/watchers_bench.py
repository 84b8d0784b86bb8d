"""Cost of the watchers with 1, 50 and 500 active rollouts: Prometheus queries and CPU.

What is measured, for each number of targets N:

* **sync**: the Kubernetes watcher's start on N Canaries and N Deployments - list, decide,
  deliver N ``NewRevision`` (signal-with-start), write N statuses; wall time and this
  process's CPU time;
* **per interval**: one sampling tick of the Prometheus watcher over N rollouts with two
  built-in metrics each - queries sent (counted by the watcher *and* by Prometheus's own
  ``prometheus_http_requests_total``), samples signalled, wall and CPU time;
* **status sync**: one pass of the status mirror (one visibility listing) over N rollouts.

The rollouts are stand-in canary workflows (``tests/watchers/standin.py``) that sit in
``Progressing``; they run in a separate process, so the CPU figures are the watchers' own
(the Temporal client included). Kubernetes, Prometheus and Temporal are the real servers of
the local cluster.

Run::

    eval "$(autopilot dev env)"            # or nothing: a temporary cluster is started
    python -m bench.watchers_bench --targets 1 50 500 --ticks 3
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.cluster import bench_cluster
from devcluster.crds import install_autopilot_crds
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from service.settings import WatchersSettings
from service.temporal import connect
from watchers.delivery import Delivery, RetryPolicy
from watchers.runner import Runner

ANALYSIS: dict[str, Any] = {
    "interval": "1m",
    "stepWeight": 10,
    "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "thresholdRange": {"max": 500}},
    ],
}


def _objects(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:6.5.0"}]},
            },
        },
    }
    canary = {
        "apiVersion": f"{CANARY_GROUP}/{CANARY_VERSION}",
        "kind": "Canary",
        "metadata": {"name": name, "annotations": {"autopilot.dev/metric-samples": "true"}},
        "spec": {"targetRef": {"name": name}, "service": {"port": 9898}, "analysis": ANALYSIS},
    }
    return deployment, canary


def _create(api: client.ApiClient, namespace: str, names: list[str]) -> None:
    apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)

    def one(name: str) -> None:
        deployment, canary = _objects(name)
        body: Any = deployment  # the client accepts plain JSON as well as its models
        apps.create_namespaced_deployment(namespace, body)
        custom.create_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, canary
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def _served_queries(prometheus_url: str) -> float:
    text = urllib.request.urlopen(f"{prometheus_url}/metrics", timeout=5).read().decode()
    pattern = r'prometheus_http_requests_total\{[^}]*handler="/api/v1/query"[^}]*\} (\S+)'
    return sum(float(value) for value in re.findall(pattern, text))


class _Clock:
    """Wall and CPU time of a block."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


async def _until(check: Any, what: str, attempts: int = 2400) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"gave up waiting for {what}")


async def measure(targets: int, ticks: int, env: dict[str, str], queue: str) -> dict[str, Any]:
    """One row of the table: N targets in a fresh namespace."""
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    namespace = f"bench-{secrets.token_hex(3)}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    _create(api, namespace, [f"app-{i:03d}" for i in range(targets)])
    temporal = await connect(env["TEMPORAL_ADDRESS"])
    delivery = Delivery(
        temporal, task_queue=queue, retry=RetryPolicy(deadline_s=60, rpc_timeout_s=20)
    )
    settings = WatchersSettings(
        namespaces=[namespace],
        state_namespace=namespace,
        leader_election=False,
        webhooks=False,
        prometheus_url=env["PROMETHEUS_URL"],
        sample_interval_s=3600,  # ticks are driven below, one at a time
        status_interval_s=3600,
    )
    runner = Runner(settings, delivery, api=api)
    stop = asyncio.Event()
    row: dict[str, Any] = {"targets": targets}
    with _Clock() as sync:
        task = asyncio.create_task(runner.run(stop))

        async def synced() -> bool:
            current = runner.current
            return (
                current is not None
                and current.kube is not None
                and sum(current.kube.stats.sent.values()) >= targets
            )

        await _until(synced, f"{targets} deliveries")
    row.update(sync_wall_s=sync.wall, sync_cpu_s=sync.cpu)
    current = runner.current
    assert current is not None and current.prometheus is not None and current.status is not None
    prometheus = current.prometheus
    status_mirror = current.status

    async def all_active() -> bool:
        await prometheus.directory.refresh()
        return prometheus.active()[1] == targets

    await _until(all_active, f"{targets} active rollouts")
    with _Clock() as status:
        await status_mirror.sync_once()
    row.update(status_wall_s=status.wall, status_cpu_s=status.cpu)
    reports, served, cpu = [], 0.0, 0.0
    for _ in range(ticks):
        before = _served_queries(env["PROMETHEUS_URL"])
        with _Clock() as tick:
            report = await prometheus.tick(datetime.now(UTC).replace(microsecond=0))
        served += _served_queries(env["PROMETHEUS_URL"]) - before
        cpu += tick.cpu
        reports.append(report)
        await asyncio.sleep(1.1)  # a new evaluation time, hence new sample IDs
    row.update(
        queries_per_tick=sum(r.queries for r in reports) / ticks,
        served_per_tick=served / ticks,
        samples_per_tick=sum(r.samples for r in reports) / ticks,
        failed_per_tick=sum(r.failed for r in reports) / ticks,
        tick_wall_s=sum(r.seconds for r in reports) / ticks,
        tick_cpu_s=cpu / ticks,
    )
    stop.set()
    await task
    async for execution in temporal.list_workflows(
        "WorkflowType = 'canary' AND ExecutionStatus = 'Running'"
    ):
        if f"/{namespace}/" in execution.id:
            await temporal.get_workflow_handle(execution.id).terminate("benchmark done")
    client.CoreV1Api(api).delete_namespace(namespace)
    api.close()
    return row


def _print(rows: list[dict[str, Any]]) -> None:
    columns = [
        ("targets", "targets", "{:d}"),
        ("queries/interval", "queries_per_tick", "{:.0f}"),
        ("served by Prometheus", "served_per_tick", "{:.0f}"),
        ("samples/interval", "samples_per_tick", "{:.0f}"),
        ("tick CPU ms", "tick_cpu_s", "{:.0f}"),
        ("tick wall ms", "tick_wall_s", "{:.0f}"),
        ("sync CPU ms", "sync_cpu_s", "{:.0f}"),
        ("sync wall ms", "sync_wall_s", "{:.0f}"),
        ("status pass CPU ms", "status_cpu_s", "{:.0f}"),
    ]
    print(" | ".join(title for title, _, _ in columns))
    for row in rows:
        cells = []
        for _, key, form in columns:
            value = row[key]
            cells.append(form.format(value * 1000 if key.endswith("_s") else value))
        print(" | ".join(cells))


async def _run(targets: list[int], ticks: int, env: dict[str, str]) -> list[dict[str, Any]]:
    queue = f"bench-standin-{uuid.uuid4().hex[:8]}"
    standin = subprocess.Popen(
        [sys.executable, "-m", "tests.watchers.standin", env["TEMPORAL_ADDRESS"], queue],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert standin.stdout is not None
        if standin.stdout.readline().strip() != "ready":
            raise RuntimeError("the stand-in worker did not start")
        return [await measure(count, ticks, env, queue) for count in targets]
    finally:
        standin.terminate()
        standin.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--ticks", type=int, default=3)
    args = parser.parse_args()
    with bench_cluster("watchers-bench-") as env:
        install_autopilot_crds(config.new_client_from_config(config_file=env["KUBECONFIG"]))
        rows = asyncio.run(_run(args.targets, args.ticks, env))
    _print(rows)


if __name__ == "__main__":
    main()
