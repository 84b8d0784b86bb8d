"""Flagger-style webhooks: payload, 200-202 is yes, retries on 5xx, timeouts are a no."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import ActivityEnvironment

from activities.canary import webhooks
from models.canary import CanaryData, CanaryStep, HookType
from models.operator import Target
from tests.canary.hooks import HookReceiver, hook_receiver
from tests.canary.specs import make_spec


@pytest.fixture
async def receiver() -> AsyncIterator[HookReceiver]:
    async with hook_receiver() as r:
        yield r


def step(hooks: list[dict], state: str = "Progressing", **data) -> CanaryStep:
    spec = make_spec(webhooks=hooks)
    return CanaryStep(
        workflow_id="canary/test/podinfo",
        target=Target(namespace="test", name="podinfo"),
        state=state,
        step_key="k",
        spec=spec,
        data=CanaryData(**data),
    )


async def test_a_hook_gets_flaggers_payload_with_its_metadata(receiver):
    hook = {"name": "load", "url": receiver.url("load"), "metadata": {"cmd": "hey -z 1m"}}
    results = await webhooks.run_hooks(step([hook], revision="abc123"), HookType.ROLLOUT)

    assert [r.ok for r in results] == [True]
    assert receiver.bodies("load") == [
        {
            "name": "podinfo",
            "namespace": "test",
            "phase": "Progressing",
            "checksum": "abc123",
            "metadata": {"cmd": "hey -z 1m"},
        }
    ]


async def test_every_delivery_of_one_hook_at_one_step_carries_the_same_idempotency_key(receiver):
    receiver.status["/gate"] = 503
    hook = {"name": "gate", "type": "confirm-rollout", "url": receiver.url("gate"), "retries": 1}
    redelivered = ActivityEnvironment()  # the same activity, run again after a crash
    for _ in range(2):
        await redelivered.run(webhooks.confirm_rollout_hooks, step([hook], state="Waiting"))
    next_step = ActivityEnvironment()
    next_step.info = dataclasses.replace(next_step.info, activity_id="next")
    await next_step.run(webhooks.confirm_rollout_hooks, step([hook], state="Waiting"))

    first, *others, last = receiver.keys
    assert len(receiver.keys) == 6 and first and set(others[:3]) == {first}
    assert first.endswith("/gate") and last != first  # another step, another key


async def test_a_4xx_is_a_no_at_once_with_the_body_in_the_message(receiver):
    receiver.status["/gate"] = 403
    hook = {"name": "gate", "type": "confirm-rollout", "url": receiver.url("gate"), "retries": 3}
    ran = await ActivityEnvironment().run(
        webhooks.confirm_rollout_hooks, step([hook], state="Waiting")
    )

    assert not ran.ok and ran.type == HookType.CONFIRM_ROLLOUT
    assert ran.results[0].status == 403 and "said 403" in ran.results[0].message
    assert len(receiver.bodies("gate")) == 1  # not retried
    assert receiver.bodies("gate")[0]["phase"] == "Waiting"


async def test_a_5xx_is_retried_as_many_times_as_configured(receiver):
    receiver.status["/flaky"] = 503
    hook = {"name": "flaky", "url": receiver.url("flaky"), "retries": 2}
    [result] = await webhooks.run_hooks(step([hook]), HookType.ROLLOUT)

    assert not result.ok and "after 3 attempts" in result.message
    assert len(receiver.bodies("flaky")) == 3


async def test_a_hook_that_does_not_answer_in_time_is_a_no(receiver):
    receiver.delay["/slow"] = 2.0
    hook = {"name": "slow", "url": receiver.url("slow"), "timeout": "200ms"}
    [result] = await webhooks.run_hooks(step([hook]), HookType.ROLLOUT)

    assert not result.ok and "no answer within 0.2s" in result.message


async def test_an_unreachable_hook_is_a_no_not_an_error():
    hook = {"name": "gone", "url": "http://127.0.0.1:9/x", "timeout": "1s"}
    [result] = await webhooks.run_hooks(step([hook]), HookType.ROLLOUT)
    assert not result.ok and result.status is None


async def test_a_rollback_hook_that_says_yes_asks_for_a_rollback(receiver):
    hooks = [
        {"name": "gate", "type": "confirm-promotion", "url": receiver.url("gate")},
        {"name": "big red button", "type": "rollback", "url": receiver.url("rollback")},
    ]
    ran = await ActivityEnvironment().run(
        webhooks.confirm_promotion_hooks, step(hooks, state="AwaitingPromotion")
    )
    assert ran.ok and ran.rollback_requested


async def test_event_hooks_get_the_event_message_type_and_timestamp(receiver):
    hook = {
        "name": "slack",
        "type": "event",
        "url": receiver.url("events"),
        "metadata": {"ch": "x"},
    }
    await ActivityEnvironment().run(
        webhooks.notify, step([hook], state="Failed", failure="request-success-rate 48 < 99")
    )
    [body] = receiver.bodies("events")
    assert body["phase"] == "Failed"
    assert body["metadata"]["eventType"] == "Warning"
    assert "request-success-rate 48 < 99" in body["metadata"]["eventMessage"]
    assert body["metadata"]["timestamp"].isdigit() and body["metadata"]["ch"] == "x"


async def test_hooks_of_other_types_are_not_called(receiver):
    hook = {"name": "pre", "type": "pre-rollout", "url": receiver.url("pre")}
    assert await webhooks.run_hooks(step([hook]), HookType.ROLLOUT) == []
    assert receiver.received == []
