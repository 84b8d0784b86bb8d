"""Chaos: concurrent canaries of mixed health while every component is SIGKILLed and restarted.

One run of :class:`Chaos` on a local cluster of its own (:class:`devcluster.cluster.DevCluster`):

* the real worker (``worker_main.py --no-watchers``; ``workers`` replicas of it on one task
  queue, as ``deploy/`` runs two) and the real watchers (``worker_main.py --watchers-only``),
  each a process of its own;
* ``rollouts`` Canary objects, each with a Flagger ``pre-rollout`` hook on a receiver that
  applies one side effect per ``Idempotency-Key``: a third healthy, a third faulty (the new
  revision fails half its requests), a third healthy but gated (``gates.beforePromotion``)
  and approved once they wait and every planned kill has happened, through the Temporal
  update with one update ID however often the approval is sent again;
* while they run, random SIGKILLs of the worker (one replica at random), the watchers, the
  Temporal server, kube-apiserver, etcd and Prometheus, each restarted at once (the
  cluster's parts on the same data: Temporal's database file, etcd's data directory).

What it checks, and prints (:meth:`ChaosReport.lines`):

* every rollout ends as its simulated health says (healthy and gated: Succeeded; faulty:
  Failed) -- a wrong outcome is a failure;
* the canary weights each VirtualService takes (watched across restarts) rise until the
  promotion, or drop once to 0 on a rollback and stay there (no traffic reaches a
  rolled-back canary);
* every approval given is honoured exactly once (one ``approve`` in the run's command log);
* every hook's side effect is applied once per step, however often it was delivered;
* after each worker kill, how late each rollout's next action was against when it was due
  (:mod:`tests.chaos.lateness`, from the workflows' histories);
* every run's history replays with today's code, and no workflow task failed during the run
  (:mod:`tests.chaos.replays`; a history with a problem is saved beside the logs).

The CI variant is ``tests/chaos/test_chaos.py`` (3 rollouts, 7 kills, about 90 s); the long
run is ``python -m bench.chaos``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from temporalio.client import Client, WorkflowExecutionStatus

from devcluster.cluster import DevCluster
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from models.operator import APPLIED, CommandRequest, OperatorStatus
from service import commands
from tests.canary.cluster import ERROR_RATE, app_deployment, new_revision
from tests.canary.hooks import HookReceiver, hook_receiver
from tests.chaos.lateness import Lateness

ROOT = Path(__file__).resolve().parents[2]

WORKER, WATCHERS = "worker", "watchers"
#: The DevCluster parts the harness kills, by their part names.
CLUSTER_PARTS = ("temporal", "kube-apiserver", "etcd", "prometheus")
COMPONENTS = (WORKER, WATCHERS, *CLUSTER_PARTS)
#: The most worker replicas a run starts.
MAX_WORKERS = 4

HEALTHY, FAULTY, GATED = "healthy", "faulty", "gated"
EXPECTED = {HEALTHY: "Succeeded", FAULTY: "Failed", GATED: "Succeeded"}

V1, V2 = "ghcr.io/stefanprodan/podinfo:6.5.0", "ghcr.io/stefanprodan/podinfo:6.5.1"


def analysis(health: str, hook_url: str) -> dict[str, Any]:
    """The Canary's analysis: 2 s steps of 20 % to 60 %, two failed checks roll back."""
    body: dict[str, Any] = {
        "interval": "2s",
        "threshold": 2,
        "stepWeight": 20,
        "maxWeight": 60,
        "metrics": [
            {
                "name": "request-success-rate",
                "thresholdRange": {"min": 99},
                "interval": "6s",
                "minSampleCount": 3,
            }
        ],
        "webhooks": [{"name": "prepare", "type": "pre-rollout", "url": hook_url, "retries": 3}],
        # A killed Prometheus is back in seconds, but the 6 s window needs two scrapes after
        # it: hold (the default for no data) for up to 30 s rather than fail a healthy canary.
        "noDataHoldIntervals": 15,
    }
    if health == GATED:
        body["gates"] = {"beforePromotion": True}
    return body


def canary_object(name: str, health: str, hook_url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{CANARY_GROUP}/{CANARY_VERSION}",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": analysis(health, hook_url),
        },
    }


@dataclass
class Kill:
    component: str
    at: float  # unix time of the SIGKILL
    restarted_in_s: float = 0.0


def applied_effects(receiver: HookReceiver) -> dict[str, str]:
    """The side effects a user's hook endpoint applies: one per ``Idempotency-Key`` (key ->
    the rollout it was for), however often each was delivered."""
    applied: dict[str, str] = {}
    for key, (_, body) in zip(receiver.keys, receiver.received, strict=True):
        if key:
            applied.setdefault(key, str(body.get("name", "")))
    return applied


class WeightLog(threading.Thread):
    """Every distinct canary weight each VirtualService of a namespace takes, across restarts
    of the API server (a watch that reconnects from its last resource version)."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        super().__init__(daemon=True)
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.weights: dict[str, list[int]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        from kubernetes import config

        version: str | None = None
        while not self.stop.is_set():
            try:
                api = config.new_client_from_config(str(self.kubeconfig))
                custom = client.CustomObjectsApi(api)
                for event in watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    "networking.istio.io",
                    "v1",
                    self.namespace,
                    "virtualservices",
                    resource_version=version,
                    timeout_seconds=5,
                    _request_timeout=10,
                ):
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj)
                    if self.stop.is_set():
                        return
            except client.ApiException as error:
                if error.status == 410:
                    version = None
                time.sleep(0.2)
            except Exception:  # the API server is down: try again
                time.sleep(0.2)

    def _record(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        for route in (obj.get("spec", {}).get("http") or [{}])[-1].get("route", []):
            if route["destination"]["host"].endswith("-canary"):
                seen = self.weights.setdefault(name, [])
                weight = int(route.get("weight") or 0)
                if not seen or seen[-1] != weight:
                    seen.append(weight)


def weight_problem(weights: Sequence[int], outcome: str) -> str | None:
    """Why a canary's weight sequence is wrong for its outcome, or None.

    Rising until the promotion (then 0, once the primary runs the new revision); on a
    rollback, one drop to 0 and nothing after it.
    """
    rising = list(weights)
    if rising and rising[-1] == 0:
        rising = rising[:-1]
    rising = [w for w in rising if w != 0] if rising[:1] == [0] else rising
    if any(b < a for a, b in itertools.pairwise(rising)):
        return f"weights not monotone before the end: {list(weights)}"
    if outcome == "Failed" and weights and weights[-1] != 0:
        return f"rolled back but the canary keeps {weights[-1]} %: {list(weights)}"
    drops = [i for i, w in enumerate(weights) if w == 0 and i > 0]
    if len(drops) > 1:
        return f"the canary's weight dropped to 0 more than once: {list(weights)}"
    return None


@dataclass
class ChaosReport:
    rollouts: dict[str, str]  # name -> health
    outcomes: dict[str, str]  # name -> final state
    kills: list[Kill]
    weights: dict[str, list[int]]
    approvals: dict[str, int]  # gated rollout -> approvals recorded as applied
    hook_deliveries: int
    hook_effects: int
    hook_effects_per_rollout: dict[str, int]
    lateness: Lateness
    problems: list[str]
    seconds: float
    histories_replayed: int = 0
    unhandled_command: int = 0
    #: Histories that do not replay, or whose workflow tasks failed (tests/chaos/replays.py).
    replay_problems: list[str] = field(default_factory=list)

    @property
    def wrong(self) -> list[str]:
        return [
            f"{name} ({health}) ended {self.outcomes.get(name, 'not at all')}"
            for name, health in self.rollouts.items()
            if self.outcomes.get(name) != EXPECTED[health]
        ]

    def lines(self) -> list[str]:
        from tests.chaos.lateness import summary

        per = {c: sum(1 for k in self.kills if k.component == c) for c in COMPONENTS}
        healths = [self.rollouts[n] for n in self.rollouts]
        out = [
            f"rollouts: {len(self.rollouts)} ({healths.count(HEALTHY)} healthy, "
            f"{healths.count(FAULTY)} faulty, {healths.count(GATED)} gated) "
            f"in {self.seconds:.0f} s",
            "kills: "
            + ", ".join(f"{c} {n}" for c, n in per.items())
            + f" (total {len(self.kills)})",
            "outcomes: "
            + ", ".join(
                f"{o} {list(self.outcomes.values()).count(o)}"
                for o in sorted(set(self.outcomes.values()))
            ),
            f"wrong outcomes: {len(self.wrong)}"
            + (f" ({'; '.join(self.wrong)})" if self.wrong else ""),
            f"approvals honoured: {sum(1 for n in self.approvals.values() if n == 1)} of "
            f"{len(self.approvals)} exactly once",
            f"hook deliveries: {self.hook_deliveries}, side effects applied: {self.hook_effects} "
            f"(one per rollout: {all(n == 1 for n in self.hook_effects_per_rollout.values())})",
            "worker kill -> each rollout's next action, late against its due time: "
            + summary(self.lateness.alone)
            + "; with another kill (any component) before it: "
            + summary(self.lateness.compound),
            f"histories replayed: {self.histories_replayed} (every run of every rollout); "
            f"workflow tasks sent back for new events (UnhandledCommand, expected): "
            f"{self.unhandled_command}",
            f"replay problems: {len(self.replay_problems)}",
            *[f"  - {p}" for p in self.replay_problems],
            f"other problems: {len(self.problems)}",
            *[f"  - {p}" for p in self.problems],
        ]
        return out


class Chaos:
    """One chaos run; see the module's docstring."""

    def __init__(
        self,
        cluster: DevCluster,
        *,
        rollouts: int,
        kills: dict[str, int],
        spacing_s: tuple[float, float] = (2.0, 5.0),
        workers: int = 1,
        seed: int | None = None,
        timeout_s: float = 600.0,
        log_dir: Path,
        progress_s: float = 30.0,
        say: Any = None,
    ) -> None:
        self.cluster = cluster
        self.kill_plan = dict(kills)
        self.spacing_s = spacing_s
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1 to {MAX_WORKERS} worker replicas, not {workers}")
        #: The worker replicas' process keys: ``worker``, then ``worker-2``...
        self.worker_roles = [WORKER] + [f"{WORKER}-{n}" for n in range(2, workers + 1)]
        self.random = random.Random(seed)
        self.timeout_s = timeout_s
        self.log_dir = log_dir
        self.progress_s = progress_s
        self.say = say or (lambda line: print(line, flush=True))
        suffix = uuid.uuid4().hex[:6]
        self.namespace = f"chaos-{suffix}"
        self.queue = f"chaos-{suffix}"
        kinds = [HEALTHY, FAULTY, GATED]
        self.rollouts = {f"app{i}": kinds[i % 3] for i in range(rollouts)}
        self.kills: list[Kill] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0
        self._client: Client | None = None
        #: Set once every planned kill has happened: the gated rollouts are approved after.
        self.kills_done = asyncio.Event()
        #: What each gated rollout's approver last did, for the progress lines.
        self.approver_state: dict[str, str] = {}

    # ------------------------------------------------------------ processes

    def _env(self, role: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
        cluster = self.cluster.env()
        env.update(
            KUBECONFIG=cluster["KUBECONFIG"],
            PYTHONPATH=str(ROOT),
            AUTOPILOT_PROMETHEUS_URL=cluster["PROMETHEUS_URL"],
            AUTOPILOT_WATCH_PROMETHEUS_URL=cluster["PROMETHEUS_URL"],
            AUTOPILOT_WATCH_NAMESPACES=json.dumps([self.namespace]),
            AUTOPILOT_WATCH_STATE_NAMESPACE=self.namespace,
            AUTOPILOT_WATCH_LEADER_ELECTION="false",
            AUTOPILOT_WATCH_WEBHOOKS="false",
            AUTOPILOT_WATCH_APPROVALS="false",
            AUTOPILOT_WATCH_STATUS_INTERVAL_S="0.5",
            AUTOPILOT_WATCH_CHECKPOINT_INTERVAL_S="0.2",
            AUTOPILOT_WATCH_SAMPLE_INTERVAL_S="2",
        )
        return env

    def _start(self, role: str) -> None:
        address = self.cluster.env()["TEMPORAL_ADDRESS"]
        mode = "--watchers-only" if role == WATCHERS else "--no-watchers"
        argv = [sys.executable, "worker_main.py", "--address", address, "--task-queue", self.queue]
        argv += [mode, "--metrics-port", "0"]
        self.starts += 1
        log = (self.log_dir / f"{role}-{self.starts}.log").open("wb")
        self.procs[role] = subprocess.Popen(
            argv, cwd=ROOT, env=self._env(role), stdout=log, stderr=subprocess.STDOUT
        )

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def _kill(self, component: str) -> Kill:
        at = time.time()
        if component in (WORKER, WATCHERS):
            role = component
            if component == WORKER and len(self.worker_roles) > 1:
                role = self.random.choice(self.worker_roles)
            proc = self.procs[role]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self._start(role)
            return Kill(component, at, time.time() - at)
        self.cluster.kill(component)
        self.cluster.up()
        return Kill(component, at, time.time() - at)

    async def _supervise(self, done: asyncio.Event) -> None:
        """Start again a worker or watchers process that exited by itself, as Kubernetes
        restarts a pod (the watchers exit when Temporal is down as they start)."""
        while not done.is_set():
            for role, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    self._start(role)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)

    async def _chaos(self, done: asyncio.Event) -> None:
        plan = [c for c, n in self.kill_plan.items() for _ in range(n)]
        self.random.shuffle(plan)
        try:
            for component in plan:
                low, high = self.spacing_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self.random.uniform(low, high))
                if done.is_set():
                    return
                self.kills.append(await asyncio.to_thread(self._kill, component))
        finally:
            self.kills_done.set()

    # ------------------------------------------------------------ the rollouts

    async def _connect(self) -> Client:
        """One client for the run: it reconnects by itself when the server comes back."""
        from service.temporal import connect

        if self._client is None:
            self._client = await connect(self.cluster.env()["TEMPORAL_ADDRESS"])
        return self._client

    async def _latest(self, temporal: Client, name: str) -> tuple[str, OperatorStatus | None]:
        """The latest run's ID, and its status once it has ended: completed, or settled
        with nothing left to do (a rolled-back canary stays Running in ``Failed``, waiting
        for ``retry`` or a new revision, once its rollback's workers are done)."""
        handle = temporal.get_workflow_handle(f"canary/{self.namespace}/{name}")
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.COMPLETED:
            result = await temporal.get_workflow_handle(
                handle.id, run_id=described.run_id, result_type=OperatorStatus
            ).result()
            return described.run_id, result
        if described.status == WorkflowExecutionStatus.RUNNING:
            status = await handle.query("status", result_type=OperatorStatus)
            busy = [w for w in status.waiting_for if w.startswith(("worker", "its queue"))]
            if status.settled and status.outcome in ("succeeded", "failed") and not busy:
                return described.run_id, status
        return described.run_id, None

    async def _until(self, what: str, check: Any, timeout_s: float) -> Any:
        """Poll ``check`` until it returns something truthy; each call is bounded too, since
        a call to a server being killed can hang until its connection times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                value = await asyncio.wait_for(check(), 10.0)
                if value:
                    return value
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{what} not within {timeout_s:.0f} s")

    async def _progress(self, done: asyncio.Event, finished: dict[str, str]) -> None:
        """One line every ``progress_s`` while the rollouts run: kills so far, what ended,
        and where each of the others stands (its phase and canary weight)."""
        started = time.monotonic()
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.progress_s)
            if done.is_set():
                return
            standing: list[str] = []
            for name in self.rollouts:
                if name in finished:
                    continue
                try:
                    temporal = await self._connect()
                    handle = temporal.get_workflow_handle(f"canary/{self.namespace}/{name}")
                    status = await asyncio.wait_for(
                        handle.query("status", result_type=OperatorStatus), 5.0
                    )
                    standing.append(f"{name} {status.state}/{status.phase}")
                except Exception as error:  # the server or the worker is down
                    standing.append(f"{name} ? ({type(error).__name__})")
            self.say(
                f"[{time.monotonic() - started:4.0f} s] kills {len(self.kills)}, "
                f"ended {len(finished)} of {len(self.rollouts)}; "
                + ", ".join(standing)
                + "".join(f"; approver {n}: {a}" for n, a in self.approver_state.items())
            )

    async def _initialised(self, name: str) -> bool:
        temporal = await self._connect()
        _, result = await self._latest(temporal, name)
        return result is not None and result.state == "Succeeded"

    async def _finished(self, name: str, first_run: str) -> OperatorStatus | None:
        temporal = await self._connect()
        run_id, result = await self._latest(temporal, name)
        return result if run_id != first_run and result is not None else None

    async def _approve(self, name: str, first_run: str) -> None:
        """Approve the gate once it waits and every planned kill has happened (so the run
        lasts through all of them, however fast the other rollouts end); the same update
        ID whatever is retried."""
        self.approver_state[name] = "waiting for the kills to end"
        await self.kills_done.wait()
        while True:
            try:
                if await asyncio.wait_for(self._approve_once(name, first_run), 15.0):
                    self.approver_state[name] = "sent"
                    return
                self.approver_state[name] = "waiting for the gate"
            except Exception as error:  # a server being killed: try again
                self.approver_state[name] = f"{type(error).__name__}: {error}"[:200]
            await asyncio.sleep(0.5)

    async def _approve_once(self, name: str, first_run: str) -> bool:
        """Send the approval if the gate waits; True once sent or the rollout ended."""
        temporal = await self._connect()
        handle = temporal.get_workflow_handle(f"canary/{self.namespace}/{name}")
        described = await handle.describe()
        if described.run_id == first_run:
            return False
        if described.status != WorkflowExecutionStatus.RUNNING:
            return True
        status = await handle.query("status", result_type=OperatorStatus)
        # The gate this rollout has: an approval while Progressing opens that state's gate
        # (a confirm-traffic-increase hook's), not the promotion's.
        if status.state != "AwaitingPromotion" or "approve" not in status.accepted_commands:
            return False
        request = CommandRequest(command="approve", by="chaos", reason="chaos")
        await commands.accept(handle, request, timeout=10, update_id=f"chaos-approve-{name}")
        return True

    async def run(self) -> ChaosReport:
        started = time.time()
        kubeconfig = Path(self.cluster.env()["KUBECONFIG"])
        api = self.cluster.admin_api_client()
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        namespace: Any = {"metadata": {"name": self.namespace}}
        core.create_namespace(namespace)
        recorder = WeightLog(kubeconfig, self.namespace)
        problems: list[str] = []
        outcomes: dict[str, str] = {}
        approvals: dict[str, int] = {}
        async with hook_receiver() as receiver:
            hook_url = receiver.url("prepare")
            for role in self.worker_roles:
                self._start(role)
            self._start(WATCHERS)
            recorder.start()
            try:
                for name, health in self.rollouts.items():
                    body: Any = app_deployment(name, V1, replicas=1)
                    client.AppsV1Api(api).create_namespaced_deployment(self.namespace, body)
                    custom.create_namespaced_custom_object(
                        CANARY_GROUP,
                        CANARY_VERSION,
                        self.namespace,
                        CANARY_PLURAL,
                        canary_object(name, health, hook_url),
                    )
                first_runs: dict[str, str] = {}
                for name in self.rollouts:
                    await self._until(
                        f"{name} initialised", lambda n=name: self._initialised(n), 180
                    )
                    temporal = await self._connect()
                    first_runs[name] = (await self._latest(temporal, name))[0]
                self.say(f"{len(first_runs)} rollouts initialised; new revisions, then chaos")
                for name, health in self.rollouts.items():
                    annotations = {ERROR_RATE: "0.5"} if health == FAULTY else {}
                    new_revision(api, self.namespace, name, V2, annotations)
                done = asyncio.Event()
                chaos = asyncio.create_task(self._chaos(done))
                supervisor = asyncio.create_task(self._supervise(done))
                progress = asyncio.create_task(self._progress(done, outcomes))
                approvers = [
                    asyncio.create_task(self._approve(n, first_runs[n]))
                    for n, h in self.rollouts.items()
                    if h == GATED
                ]
                try:
                    for name in self.rollouts:
                        result = await self._until(
                            f"{name} finished",
                            lambda n=name: self._finished(n, first_runs[n]),
                            self.timeout_s,
                        )
                        outcomes[name] = result.state
                        if self.rollouts[name] == GATED:
                            approvals[name] = sum(
                                1
                                for c in result.commands
                                if c.command == "approve" and c.outcome == APPLIED
                            )
                except TimeoutError as error:
                    problems.append(str(error))
                finally:
                    done.set()
                    await chaos
                    await supervisor
                    await progress
                    for task in approvers:
                        task.cancel()
                await asyncio.sleep(3)  # the last weights reach the recorder
                temporal = await self._connect()
                from tests.chaos.lateness import lateness_after_kills
                from tests.chaos.replays import every_run, replay_problems
                from workflows.canary.machine import CanaryWorkflow

                histories = await every_run(
                    temporal, [f"canary/{self.namespace}/{n}" for n in self.rollouts]
                )
                lateness = lateness_after_kills(
                    histories,
                    [k.at for k in self.kills if k.component == WORKER],
                    [k.at for k in self.kills],
                )
                replays = await replay_problems(histories, CanaryWorkflow, self.log_dir)
            finally:
                recorder.stop.set()
                self._stop_all()
        for name in self.rollouts:
            problem = weight_problem(recorder.weights.get(name, []), outcomes.get(name, ""))
            if problem:
                problems.append(f"{name}: {problem}")
        per_rollout: dict[str, int] = {}
        applied = applied_effects(receiver)
        for rollout in applied.values():
            per_rollout[rollout] = per_rollout.get(rollout, 0) + 1
        for name in self.rollouts:
            if per_rollout.get(name, 0) != 1:
                problems.append(
                    f"{name}: pre-rollout side effect applied {per_rollout.get(name, 0)} times"
                )
        return ChaosReport(
            rollouts=self.rollouts,
            outcomes=outcomes,
            kills=self.kills,
            weights=recorder.weights,
            approvals=approvals,
            hook_deliveries=len(receiver.received),
            hook_effects=len(applied),
            hook_effects_per_rollout=per_rollout,
            lateness=lateness,
            problems=problems,
            seconds=time.time() - started,
            histories_replayed=replays.histories,
            unhandled_command=replays.unhandled_command,
            replay_problems=replays.problems,
        )
