"""The concurrency cap end to end: with ``AUTOPILOT_CANARY_MAX_CONCURRENT=1`` on the worker,
a second canary stays ``Queued`` while the first rolls out, then proceeds and is promoted.

Real API server, Prometheus and Temporal (the in-process worker of ``conftest.py`` runs the
rollout-slots semaphore too); pods and traffic are simulated. Every wait is functional."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator

import pytest
from kubernetes import client

from models.rollout_slots import SLOTS_QUERY, SlotsStatus, slots_workflow_id
from tests.canary.cluster import new_revision
from tests.canary.e2e import Rollouts
from tests.canary.histories import record_if_asked
from tests.canary.test_canary_e2e import V2, canary_spec, deployed
from tests.fixtures.cluster import fresh_namespace
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

QUEUED_MESSAGE = "queued for a rollout permit of global (cap 1)"


@pytest.fixture
def other_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A second fresh namespace, so the two rollouts share nothing but the global cap."""
    with fresh_namespace(kube_api) as name:
        yield name


async def test_with_a_global_cap_of_one_the_second_canary_waits_queued_for_the_first(
    rollouts: Rollouts,
    kube_api: client.ApiClient,
    namespace: str,
    other_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = canary_spec(maxWeight=20)
    await deployed(rollouts, kube_api, namespace, spec)
    await deployed(rollouts, kube_api, other_namespace, spec)
    monkeypatch.setenv("AUTOPILOT_CANARY_MAX_CONCURRENT", "1")

    new_revision(kube_api, namespace, "podinfo", V2)
    new_revision(kube_api, other_namespace, "podinfo", V2)
    first = await rollouts.start(namespace, "podinfo", spec)
    await rollouts.wait_for_weight(first, 10)
    second = await rollouts.start(other_namespace, "podinfo", spec)
    await rollouts.wait_for(second, "Queued")
    semaphore = rollouts.client.get_workflow_handle(slots_workflow_id("global"))

    def slots_now() -> Awaitable[SlotsStatus]:
        return semaphore.query(SLOTS_QUERY, result_type=SlotsStatus)

    slots = await eventually(slots_now, lambda s: s.waiters == [second.id], attempts=300, pause=0.1)
    assert slots.holders == [first.id] and slots.waiters == [second.id]
    queued = await eventually(
        lambda: rollouts.status(second),
        lambda s: s.data["message"] == QUEUED_MESSAGE,
        attempts=300,
        pause=0.1,
    )
    assert queued.accepted_commands == ["abort", "pause"]

    # While the first is not finished, the second never leaves Queued.
    while True:
        waiting = await rollouts.status(second)
        if (await rollouts.status(first)).final:
            break
        assert waiting.state == "Queued", waiting.data
        assert waiting.data["canary_weight"] == 0
        assert waiting.data["message"] == QUEUED_MESSAGE
        await asyncio.sleep(0.2)

    done = await first.result()
    promoted = await second.result()

    assert done.state == "Succeeded" and done.data["applied_weights"] == [0, 10, 20, 0]
    assert promoted.state == "Succeeded" and promoted.data["applied_weights"] == [0, 10, 20, 0]
    assert promoted.data["slots"] == ["global"]
    left_queued = next(t for t in promoted.transitions if t.source == "Queued" != t.target)
    finished = next(t for t in done.transitions if t.target == "Succeeded")
    assert left_queued.at >= finished.at
    # The release is a signal: let the semaphore process it.
    slots = await eventually(slots_now, lambda s: not s.holders, attempts=300, pause=0.1)
    assert slots.holders == [] and slots.waiters == []
    await record_if_asked(second, "canary_queued_for_a_permit")
    await record_if_asked(semaphore, "rollout_slots")
