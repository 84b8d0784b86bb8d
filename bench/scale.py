"""Many concurrent canaries on one worker: step lateness, worker cost, API and query load.

For each N of ``--rollouts``: N apps on the local cluster, each bootstrapped, then given a
new revision (``--faulty`` of them, 10 % by default, answer half their requests with errors)
and a canary (interval ``--interval``, steps of 10 % to ``--max-weight``). One worker process
(the real ``worker_main.py --no-watchers``) runs every workflow and activity; the watchers run
in a second process (``worker_main.py --watchers-only``) so their CPU is counted apart.

Per N it prints one row:

* **lateness p50/p99**: timer due (the workflow history: ``TimerStarted`` time plus its
  duration) to the next canary weight seen by a watch on the VirtualServices;
* **worker RSS max** and **CPU s/min** (user + system, from ``/proc``), and the watchers'
  CPU per analysis interval;
* **events/step** and **actions/step** (history events, and the ones Temporal bills as
  actions: starts, activities, timers, signals, updates, search attributes, per weight step);
* **kube req/step**: ``apiserver_request_total`` (kube-apiserver's ``/metrics``), delta;
* **prom q/interval**: ``prometheus_http_requests_total`` for query handlers, delta;
* **wrong**: rollouts that did not end as they should (healthy Succeeded, faulty Failed).

It also prints the simulator's scrapes, each step's legs and every workflow task's queue
wait, run time and timeouts, from the histories. ``--kill-after S`` SIGKILLs the worker S
seconds after the canaries start, starts a new one at once, and prints how late each
rollout's first step due after the kill showed its weight.

Run::

    eval "$(autopilot dev env)"            # or nothing: a temporary cluster is started
    python -m bench.scale --rollouts 10 100 300 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.cluster import bench_cluster
from devcluster.prometheus import SIM_JOB
from service.search_attributes import KEY_STATE, KEY_TARGET
from tests.canary.cluster import ERROR_RATE, app_deployment, create_app, new_revision
from tests.canary.e2e import Rollouts
from tests.canary.specs import spec_dict
from tests.chaos.lateness import LOCAL_ACTIVITY_MARKER, event_seconds

ROOT = Path(__file__).resolve().parents[1]
V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"
TICK = os.sysconf("SC_CLK_TCK")
#: History event types Temporal counts as billable actions (and each local activity's
#: marker, :data:`LOCAL_ACTIVITY_MARKER`).
ACTIONS = {
    "WorkflowExecutionStarted",
    "ActivityTaskScheduled",
    "TimerStarted",
    "WorkflowExecutionSignaled",
    "WorkflowExecutionUpdateAccepted",
    "UpsertWorkflowSearchAttributes",
    "StartChildWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionInitiated",
    "WorkflowExecutionContinuedAsNew",
}


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (``nan`` when there is nothing)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def lateness(dues: Sequence[float], changes: Sequence[float]) -> list[float]:
    """For each timer due time, how long until the next weight change, if one came before
    the next timer fell due (a timer whose interval changed nothing counts for nothing)."""
    ordered = sorted(changes)
    result = []
    due_list = sorted(dues)
    for index, due in enumerate(due_list):
        at = bisect_left(ordered, due)
        if at == len(ordered):
            continue
        following = due_list[index + 1] if index + 1 < len(due_list) else float("inf")
        if ordered[at] < following:
            result.append(ordered[at] - due)
    return result


def counter_sum(text: str, metric: str, label_filter: str = "") -> float:
    """Sum of a counter's samples in Prometheus text format whose labels match the regex."""
    total = 0.0
    for labels, value in re.findall(rf"^{metric}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        if re.search(label_filter, labels or ""):
            total += float(value)
    return total


def wrong_outcomes(outcomes: dict[str, str], faulty: set[str]) -> list[str]:
    """Apps whose rollout ended otherwise than healthy → Succeeded, faulty → Failed."""
    return sorted(
        name
        for name, state in outcomes.items()
        if state != ("Failed" if name in faulty else "Succeeded")
    )


@dataclass
class Proc:
    """CPU and peak RSS of a process, sampled from ``/proc``."""

    pid: int
    rss_max: int = 0
    start_cpu: float = 0.0
    #: CPU of the processes this one replaced (a killed worker's, counted before the kill).
    earlier_cpu: float = 0.0

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def sample(self) -> None:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.rss_max = max(self.rss_max, int(line.split()[1]) * 1024)


@dataclass
class Changes:
    """Watches every VirtualService of a namespace; records (wall time) each canary weight."""

    api: client.ApiClient
    namespace: str
    seen: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        version: str | None = None
        while not self.stop.is_set():
            try:
                for event in watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    "networking.istio.io",
                    "v1",
                    self.namespace,
                    "virtualservices",
                    resource_version=version,
                    timeout_seconds=2,
                ):
                    now = time.time()
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    for route in obj["spec"]["http"][0]["route"]:
                        if route["destination"]["host"].endswith("-canary"):
                            weight = int(route.get("weight") or 0)
                            history = self.seen.setdefault(name, [])
                            if not history or history[-1][1] != weight:
                                history.append((now, weight))
            except client.ApiException as error:
                if error.status != 410:
                    raise
                version = None


@dataclass
class Kill:
    """A worker SIGKILL and its restart (epoch seconds)."""

    at: float
    ready: float

    def resumed(self, dues: Sequence[float], changes: Sequence[float]) -> list[float]:
        """How late, after its due time, a rollout's first step due after the kill showed
        its weight (empty when no step fell due after it)."""
        first = min((due for due in dues if due >= self.at), default=None)
        return [] if first is None else lateness([first], changes)


async def kill_and_restart(
    env: dict[str, str],
    queue: str,
    logs: Path,
    worker: subprocess.Popen[bytes],
    proc: Proc,
) -> tuple[Kill, subprocess.Popen[bytes]]:
    """SIGKILL the worker, start a new one at once (as a supervisor would), and wait until
    it polls; ``proc`` follows the new process, keeping the old one's CPU and peak RSS."""
    proc.sample()
    proc.earlier_cpu += proc.cpu() - proc.start_cpu
    at = time.time()
    worker.kill()
    worker.wait()
    log = logs / "worker-restarted.log"
    restarted = start_process(env, queue, log, "--no-watchers")
    while not log.exists() or "worker on task queue" not in log.read_text(errors="replace"):
        await asyncio.sleep(0.05)
    proc.pid = restarted.pid
    proc.start_cpu = proc.cpu()
    return Kill(at, time.time()), restarted


def start_process(env: dict[str, str], queue: str, log: Path, mode: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    full.update(env, PYTHONPATH=str(ROOT))
    # As an installed package runs (pip writes the bytecode): the workflow sandbox imports
    # the workflow modules anew for every run, and from source that is a compile each time.
    full.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "worker_main.py", "--address", env["TEMPORAL_ADDRESS"]]
    argv += ["--task-queue", queue, "--metrics-port", "0", mode]
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)


def apiserver_requests(api: client.ApiClient) -> float:
    host = api.configuration.host
    response = api.rest_client.pool_manager.request("GET", f"{host}/metrics")
    return counter_sum(response.data.decode(), "apiserver_request_total")


def prometheus_queries(url: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    return counter_sum(text, "prometheus_http_requests_total", r'handler="/api/v1/query(_range)?"')


def prometheus_value(url: str, query: str) -> float:
    """One instant query's single value (``nan`` when it has none)."""
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    answer = json.loads(urllib.request.urlopen(address, timeout=10).read())
    found = answer["data"]["result"]
    return float(found[0]["value"][1]) if found else float("nan")


def simulator_scrapes(url: str, seconds: float) -> dict[str, float]:
    """How Prometheus fared scraping the simulator over the last ``seconds``: the slowest
    scrape, the median one, the most samples one scrape held, and the share of scrapes
    that failed (``up == 0``), so a metrics endpoint grown too large or slow shows."""
    window = f"{max(1, round(seconds))}s"
    job = f'{{job="{SIM_JOB}"}}'
    return {
        "scrape_max": prometheus_value(
            url, f"max_over_time(scrape_duration_seconds{job}[{window}])"
        ),
        "scrape_p50": prometheus_value(
            url, f"quantile_over_time(0.5, scrape_duration_seconds{job}[{window}])"
        ),
        "samples": prometheus_value(url, f"max_over_time(scrape_samples_scraped{job}[{window}])"),
        "missed": 1 - prometheus_value(url, f"avg_over_time(up{job}[{window}])"),
    }


def timer_due(event: HistoryEvent) -> float:
    """When a ``TimerStarted`` event's timer falls due, as ``time.time()`` counts: the event's
    server time plus the whole timeout (fractions and days included)."""
    timeout = event.timer_started_event_attributes.start_to_fire_timeout
    return event_seconds(event) + timeout.ToMicroseconds() / 1e6


#: The legs of a step from a timer falling due: the server firing it, the workflow task it
#: wakes waiting in its queue and running (the analysis and the weight change with it, when
#: they are local activities), and any activity task that task scheduled waiting and running.
LEGS = ("timer fired", "task queued", "task ran", "activity queued", "activity ran")


@dataclass
class History:
    """What one workflow run's history says about its steps."""

    dues: list[float] = field(default_factory=list)
    events: int = 0
    actions: int = 0
    #: Per leg of a step (:data:`LEGS`), the seconds each took, for every timer that fired.
    legs: dict[str, list[float]] = field(default_factory=lambda: {leg: [] for leg in LEGS})
    #: Every workflow task's wait in its queue and its run on the worker (seconds), and
    #: how many timed out (mostly on the sticky queue: they then wait on the shared one).
    task_waits: list[float] = field(default_factory=list)
    task_runs: list[float] = field(default_factory=list)
    task_timeouts: int = 0


def step_legs(events: Sequence[HistoryEvent]) -> dict[str, list[float]]:
    """For each timer that fired, how long each leg of :data:`LEGS` took.

    The workflow task counted is the first one after the firing that completed (one that
    timed out on the sticky queue counts in the wait of the next); the activity legs are
    those of the activity tasks its completion scheduled, if any.
    """
    legs: dict[str, list[float]] = {leg: [] for leg in LEGS}
    due: dict[int, float] = {}
    fired_at: float | None = None
    task_started: float | None = None
    completed_id: int | None = None
    scheduled_at: dict[int, float] = {}
    started_at: dict[int, float] = {}
    for event in events:
        at = event_seconds(event)
        if event.HasField("timer_started_event_attributes"):
            due[event.event_id] = timer_due(event)
        elif event.HasField("timer_fired_event_attributes"):
            timer = due.pop(event.timer_fired_event_attributes.started_event_id, None)
            if timer is not None:
                legs["timer fired"].append(at - timer)
                fired_at, task_started = at, None
        elif event.HasField("workflow_task_started_event_attributes") and fired_at is not None:
            task_started = at
        elif event.HasField("workflow_task_timed_out_event_attributes"):
            task_started = None
        elif event.HasField("workflow_task_completed_event_attributes"):
            if fired_at is not None and task_started is not None:
                legs["task queued"].append(task_started - fired_at)
                legs["task ran"].append(at - task_started)
                completed_id, fired_at = event.event_id, None
        elif event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.workflow_task_completed_event_id == completed_id:
                scheduled_at[event.event_id] = at
        elif event.HasField("activity_task_started_event_attributes"):
            scheduled = event.activity_task_started_event_attributes.scheduled_event_id
            if scheduled in scheduled_at:
                legs["activity queued"].append(at - scheduled_at.pop(scheduled))
                started_at[scheduled] = at
        elif event.HasField("activity_task_completed_event_attributes"):
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in started_at:
                legs["activity ran"].append(at - started_at.pop(scheduled))
    return legs


def workflow_tasks(events: Sequence[HistoryEvent], found: History) -> None:
    """Add each workflow task's queue wait, run time and timeouts to ``found``."""
    scheduled_at: dict[int, float] = {}
    started_at: dict[int, float] = {}
    for event in events:
        at = event_seconds(event)
        if event.HasField("workflow_task_scheduled_event_attributes"):
            scheduled_at[event.event_id] = at
        elif event.HasField("workflow_task_started_event_attributes"):
            scheduled = event.workflow_task_started_event_attributes.scheduled_event_id
            if scheduled in scheduled_at:
                found.task_waits.append(at - scheduled_at[scheduled])
            started_at[event.event_id] = at
        elif event.HasField("workflow_task_completed_event_attributes"):
            started = event.workflow_task_completed_event_attributes.started_event_id
            if started in started_at:
                found.task_runs.append(at - started_at[started])
        elif event.HasField("workflow_task_timed_out_event_attributes"):
            found.task_timeouts += 1


async def history_figures(handle: WorkflowHandle[Any, Any]) -> History:
    """Timer due times (epoch seconds), events, actions and step legs of a workflow's run."""
    found = History()
    events = [event async for event in handle.fetch_history_events()]
    for event in events:
        found.events += 1
        kind = event.WhichOneof("attributes") or ""
        name = re.sub(r"_event_attributes$", "", kind).title().replace("_", "")
        local = kind == "marker_recorded_event_attributes" and (
            event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        )
        if name in ACTIONS or local:
            found.actions += 1
        if event.HasField("timer_started_event_attributes"):
            found.dues.append(timer_due(event))
    found.legs = step_legs(events)
    workflow_tasks(events, found)
    return found


async def ended(temporal: Client, namespace: str, skip_runs: set[str]) -> dict[str, str]:
    """The apps of ``namespace`` whose canary reached Succeeded or Failed (a Failed run waits
    for a retry), from the search attributes every run publishes: one visibility call that
    the worker takes no part in (a status query per rollout is a workflow task each, and at
    1,000 rollouts the benchmark's own queries would be most of the worker's work)."""
    query = (
        f"AutopilotNamespace = '{namespace}' AND AutopilotOperator = 'canary' "
        "AND AutopilotState IN ('Succeeded', 'Failed')"
    )
    found: dict[str, str] = {}
    async for execution in temporal.list_workflows(query):
        if execution.run_id in skip_runs:
            continue
        state = execution.typed_search_attributes.get(KEY_STATE)
        target = execution.typed_search_attributes.get(KEY_TARGET)
        if state and target:
            found[target.split("/", 1)[1]] = state
    return found


async def one_size(n: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    namespace = f"scale-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    temporal = await Client.connect(env["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    queue = f"scale-{uuid.uuid4().hex[:6]}"
    rollouts = Rollouts(temporal, queue)
    logs = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
    worker = start_process(env, queue, logs / "worker.log", "--no-watchers")
    watchers = start_process(env, queue, logs / "watchers.log", "--watchers-only")
    spec = spec_dict(
        "app",
        interval=f"{args.interval}s",
        threshold=2,
        maxWeight=args.max_weight,
        stepWeight=10,
        metrics=[
            {
                "name": "request-success-rate",
                "thresholdRange": {"min": 99},
                "interval": f"{args.interval}s",
                "minSampleCount": 3,
            }
        ],
    )
    names = [f"app-{i}" for i in range(n)]
    faulty = {name for i, name in enumerate(names) if i % round(1 / args.faulty) == 0}
    limit = asyncio.Semaphore(16)

    def spec_for(name: str) -> dict[str, Any]:
        return {**spec, "targetRef": {**spec["targetRef"], "name": name}}

    bootstrap_runs: set[str] = set()

    async def bootstrap(name: str) -> None:
        async with limit:
            await asyncio.to_thread(
                create_app, api, namespace, app_deployment(name, V1, replicas=args.replicas)
            )
            handle = await rollouts.start(namespace, name, spec_for(name))
            await handle.result()
            bootstrap_runs.add(handle.result_run_id or "")

    try:
        while "worker on task queue" not in (logs / "worker.log").read_text(errors="replace"):
            await asyncio.sleep(0.1)
        print(f"[N={n}] worker up; bootstrapping {n} apps", flush=True)
        await asyncio.gather(*(bootstrap(name) for name in names))
        changes = Changes(api, namespace)
        threading.Thread(target=changes.run, daemon=True).start()
        procs = [Proc(worker.pid), Proc(watchers.pid)]
        for proc in procs:
            proc.start_cpu = proc.cpu()
        kube0, prom0, wall0 = (
            apiserver_requests(api),
            prometheus_queries(env["PROMETHEUS_URL"]),
            time.time(),
        )

        async def roll(name: str) -> WorkflowHandle[Any, Any]:
            async with limit:
                annotations = {ERROR_RATE: "0.5"} if name in faulty else None
                await asyncio.to_thread(new_revision, api, namespace, name, V2, annotations)
                return await rollouts.start(namespace, name, spec_for(name))

        handles = dict(
            zip(names, await asyncio.gather(*(roll(name) for name in names)), strict=True)
        )
        print(f"[N={n}] {n} canaries started ({len(faulty)} faulty)", flush=True)
        outcomes: dict[str, str] = {}
        pending = set(names)
        last = checked = 0.0
        kill: Kill | None = None
        while pending:
            for proc in procs:
                proc.sample()
            due_kill = args.kill_after is not None and time.time() - wall0 >= args.kill_after
            if due_kill and kill is None:
                kill, worker = await kill_and_restart(env, queue, logs, worker, procs[0])
                print(
                    f"[N={n}] worker SIGKILLed at {kill.at - wall0:.0f} s; the new one "
                    f"polls after {kill.ready - kill.at:.1f} s",
                    flush=True,
                )
            if time.time() - checked > 2:
                checked = time.time()
                for name, state in (await ended(temporal, namespace, bootstrap_runs)).items():
                    if name in pending:
                        outcomes[name] = state
                        pending.discard(name)
            if time.time() - last > 10:
                last = time.time()
                print(
                    f"[N={n}] {n - len(pending)}/{n} done, {time.time() - wall0:.0f} s", flush=True
                )
            await asyncio.sleep(1)
        wall = time.time() - wall0
        kube = apiserver_requests(api) - kube0
        prom = prometheus_queries(env["PROMETHEUS_URL"]) - prom0
        scrapes = simulator_scrapes(env["PROMETHEUS_URL"], wall)
        cpu = [proc.cpu() - proc.start_cpu + proc.earlier_cpu for proc in procs]
        changes.stop.set()
        for handle in handles.values():
            if (await handle.describe()).status.name == "RUNNING":  # type: ignore[union-attr]
                await handle.terminate("benchmark done")
        late: list[float] = []
        events = actions = steps = 0
        legs: dict[str, list[float]] = {leg: [] for leg in LEGS}
        tasks = History()
        resumed: list[float] = []
        for name, handle in handles.items():
            history = await history_figures(handle)
            seen = changes.seen.get(name, [])
            changed_at = [at for at, _ in seen]
            late += lateness(history.dues, changed_at)
            if kill is not None:
                resumed += kill.resumed(history.dues, changed_at)
            tasks.task_waits += history.task_waits
            tasks.task_runs += history.task_runs
            tasks.task_timeouts += history.task_timeouts
            events, actions = events + history.events, actions + history.actions
            for leg, seconds in history.legs.items():
                legs[leg] += seconds
            steps += max(1, len(seen))
        intervals = wall / args.interval
        return {
            "n": n,
            "late": late,
            "rss": procs[0].rss_max,
            "cpu_min": cpu[0] / wall * 60,
            "watch_cpu": cpu[1] / intervals,
            "events": events / steps,
            "actions": actions / steps,
            "kube": kube / steps,
            "prom": prom / intervals,
            "wrong": wrong_outcomes(outcomes, faulty),
            "wall": wall,
            "legs": legs,
            "tasks": tasks,
            "kill": kill,
            "resumed": resumed,
            **scrapes,
        }
    finally:
        for process in (worker, watchers):
            process.terminate()
            process.wait(30)
        core.delete_namespace(namespace)  # the namespace controller removes the apps


def row(r: dict[str, Any]) -> str:
    return (
        f"| {r['n']} | {quantile(r['late'], 0.5):.2f} s | {quantile(r['late'], 0.99):.2f} s "
        f"| {r['rss'] / 2**20:.0f} MiB | {r['cpu_min']:.1f} s | {r['watch_cpu'] * 1000:.0f} ms "
        f"| {r['events']:.1f} | {r['actions']:.1f} | {r['kube']:.1f} | {r['prom']:.1f} "
        f"| {len(r['wrong'])} | {r['wall']:.0f} s |"
    )


HEADER = (
    "| N | lateness p50 | p99 | worker RSS max | worker CPU/min | watchers CPU/interval "
    "| events/step | actions/step | kube req/step | prom q/interval | wrong | wall |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


async def bench(args: argparse.Namespace, env: dict[str, str]) -> None:
    os.environ.update(env)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    for n in args.rollouts:
        result = await one_size(n, args, env)
        rows.append(row(result))
        print(HEADER, *rows, sep="\n", flush=True)
        print(
            f"[N={n}] simulator scrapes: p50 {result['scrape_p50'] * 1000:.0f} ms, "
            f"max {result['scrape_max'] * 1000:.0f} ms, {result['samples']:.0f} samples, "
            f"{result['missed']:.1%} missed",
            flush=True,
        )
        legs = ", ".join(
            f"{leg} p50 {quantile(seconds, 0.5):.2f} s / p99 {quantile(seconds, 0.99):.2f} s"
            for leg, seconds in result["legs"].items()
        )
        print(f"[N={n}] step legs: {legs}", flush=True)
        tasks: History = result["tasks"]
        print(
            f"[N={n}] workflow tasks: {len(tasks.task_runs)}, queued p50 "
            f"{quantile(tasks.task_waits, 0.5):.2f} s / "
            f"p99 {quantile(tasks.task_waits, 0.99):.2f} s, "
            f"ran p50 {quantile(tasks.task_runs, 0.5):.3f} s / p99 "
            f"{quantile(tasks.task_runs, 0.99):.3f} s, timed out {tasks.task_timeouts}",
            flush=True,
        )
        kill: Kill | None = result["kill"]
        if kill is not None:
            resumed = result["resumed"]
            print(
                f"[N={n}] after the SIGKILL, each rollout's next step (from its due time): "
                f"{len(resumed)} rollouts, p50 {quantile(resumed, 0.5):.2f} s, "
                f"p99 {quantile(resumed, 0.99):.2f} s, "
                f"max {max(resumed, default=float('nan')):.2f} s; "
                f"within 5 s: {sum(1 for r in resumed if r <= 5)}/{len(resumed)}",
                flush=True,
            )
        if result["wrong"]:
            print(f"wrong outcomes: {result['wrong']}", flush=True)
    print(f"load average at end: {os.getloadavg()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--rollouts", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--interval", type=int, default=10, help="analysis interval, seconds")
    parser.add_argument("--max-weight", type=int, default=30)
    parser.add_argument("--faulty", type=float, default=0.1, help="share of faulty revisions")
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each app")
    parser.add_argument(
        "--kill-after",
        type=float,
        metavar="SECONDS",
        help="SIGKILL the worker this long after the canaries start, restart it at once, and "
        "print how late each rollout's next step came",
    )
    args = parser.parse_args(argv)
    with bench_cluster("scale-bench-") as env:
        asyncio.run(bench(args, env))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip the teardown the SDK core can crash (sdk-python#300)
