"""Two watcher replicas give the result of one, with a restart in the middle of a rollout.

Asserted on what Temporal recorded: how many runs the workflow has, and that no event moved
the canary machine twice (every transition in the run's result has its own event ID).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from models.operator import OperatorStatus
from service.settings import WatchersSettings
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    runs,
    settings,
    signals,
    unique,
)
from watchers.runner import Runner

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

ANALYSIS: dict[str, Any] = {"interval": "2s", "stepWeights": [20, 40, 60], "threshold": 2}


class Replica:
    """One watcher process: a Runner that can be stopped and started again."""

    def __init__(self, watch: WatchersSettings, temporal: Client, queue: str, api: Any) -> None:
        self.watch = watch
        self.delivery = make_delivery(temporal, queue)
        self.api = api
        self.runner: Runner | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.terms = 0

    def start(self) -> None:
        self._stop = asyncio.Event()
        self.runner = Runner(self.watch, self.delivery, api=self.api)
        self._task = asyncio.create_task(self.runner.run(self._stop))

    @property
    def leading(self) -> bool:
        return self.runner is not None and self.runner.current is not None

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 60)
        if self.runner is not None and self.runner.elector is not None:
            self.terms += self.runner.elector.terms


@contextlib.asynccontextmanager
async def replicas(*members: Replica) -> AsyncIterator[None]:
    for member in members:
        member.start()
    try:
        yield
    finally:
        await asyncio.gather(*(member.stop() for member in members))


def phase(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict((cluster.get_canary(name) or {}).get("status") or {})


async def rollout_result(temporal: Client, workflow_id: str, run_id: str) -> OperatorStatus:
    handle = temporal.get_workflow_handle(workflow_id, run_id=run_id, result_type=OperatorStatus)
    return await handle.result()


def assert_no_duplicate_transition(result: OperatorStatus) -> None:
    counts = Counter(transition.event_id for transition in result.transitions)
    repeated = {event_id: n for event_id, n in counts.items() if n > 1}
    assert not repeated, f"events that moved the machine twice: {repeated}"


async def test_two_replicas_with_a_lease_and_a_restart_mid_rollout_act_as_one(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, canary_queue: str
) -> None:
    name = unique("web")
    workflow_id = f"canary/{cluster.namespace}/{name}"
    with_lease = {"leader_election": True, "prometheus": False}
    first = Replica(
        settings(cluster.namespace, identity="first", **with_lease),
        temporal,
        canary_queue,
        kube_api,
    )
    second = Replica(
        settings(cluster.namespace, identity="second", **with_lease),
        temporal,
        canary_queue,
        kube_api,
    )
    cluster.create_deployment(deployment(name, replicas=2))
    cluster.create_canary(canary(name, analysis=ANALYSIS))

    async with replicas(first, second):
        await eventually(lambda: first.leading or second.leading)
        await eventually(lambda: phase(cluster, name).get("phase") == "Succeeded")  # bootstrap
        cluster.set_image(name, "podinfo:6.6.0")
        rollout = (await eventually(lambda: runs(temporal, workflow_id), lambda r: len(r) == 2))[-1]
        await eventually(lambda: phase(cluster, name).get("canaryWeight") == 20)
        # Mid-rollout: the leader stops (and releases the Lease), then comes back.
        leader, standby = (first, second) if first.leading else (second, first)
        await leader.stop()
        await eventually(lambda: standby.leading)
        leader.start()
        result = await rollout_result(temporal, workflow_id, rollout)
        await eventually(
            lambda: phase(cluster, name),
            lambda status: status.get("runId") == rollout and status.get("phase") == "Succeeded",
        )
        lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(
            "autopilot-watchers", cluster.namespace
        )

    assert result.state == "Succeeded"
    assert_no_duplicate_transition(result)
    assert len(await runs(temporal, workflow_id)) == 2  # the bootstrap, then this rollout
    assert lease.spec is not None and (lease.spec.lease_transitions or 0) >= 1
    assert first.terms >= 1 and second.terms >= 1
    assert phase(cluster, name)["phase"] == "Succeeded"


async def test_two_replicas_without_a_lease_deliver_twice_and_the_workflow_moves_once(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, canary_queue: str
) -> None:
    name = unique("web")
    workflow_id = f"canary/{cluster.namespace}/{name}"
    no_lease = {"leader_election": False, "prometheus": False}
    first = Replica(
        settings(cluster.namespace, identity="first", **no_lease), temporal, canary_queue, kube_api
    )
    second = Replica(
        settings(cluster.namespace, identity="second", **no_lease), temporal, canary_queue, kube_api
    )
    cluster.create_deployment(deployment(name, replicas=2))
    cluster.create_canary(canary(name, analysis=ANALYSIS))

    async with replicas(first):
        await eventually(lambda: phase(cluster, name).get("phase") == "Succeeded")  # bootstrap
    async with replicas(first, second):
        await eventually(lambda: first.leading and second.leading)
        cluster.set_image(name, "podinfo:6.6.0")
        rollout = (await eventually(lambda: runs(temporal, workflow_id), lambda r: len(r) == 2))[-1]
        await eventually(lambda: phase(cluster, name).get("canaryWeight") == 20)
        await first.stop()  # a restart, mid-rollout
        first.start()
        result = await rollout_result(temporal, workflow_id, rollout)
    sent = await signals(temporal, workflow_id, rollout)

    new_revisions = [event.id for event in sent if event.type == "NewRevision"]
    print(f"\nNewRevision signals in the rollout's history: {len(new_revisions)}")
    assert len(set(new_revisions)) == 1  # the same event, however many times it came
    assert result.state == "Succeeded"
    assert_no_duplicate_transition(result)
    assert len(await runs(temporal, workflow_id)) == 2
