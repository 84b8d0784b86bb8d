"""Delivery against a real Temporal dev server: signal, signal-with-start, and failures.

The workflows here are test recorders registered under operator names (see
``tests/recording_workflows.py``); Temporal itself is the real dev server.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.operator import EventEnvelope, Target, workflow_id
from service.temporal import connect
from tests.recording_workflows import STOP_EVENT, recorded, recording_worker, unique_name
from watchers.delivery import (
    Delivery,
    DeliveryMetrics,
    DeliveryRequest,
    Outcome,
    RetryPolicy,
)

pytestmark = pytest.mark.temporal

TASK_QUEUE = f"delivery-tests-{uuid.uuid4().hex[:8]}"
SOURCE = "test/delivery"
#: Quick retries for the outage tests: three tries, tiny pauses.
QUICK = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05, rpc_timeout_s=2)


@pytest.fixture(scope="module")
async def client(dev_server_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    async with recording_worker(dev_server_env.client, TASK_QUEUE):
        yield dev_server_env.client


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def delivery(client: Client, registry: CollectorRegistry) -> Delivery:
    return Delivery(client, task_queue=TASK_QUEUE, metrics=DeliveryMetrics.for_registry(registry))


def envelope(type_: str = "SecurityAlert", event_id: str | None = None) -> EventEnvelope:
    return EventEnvelope(
        id=event_id or f"ev-{uuid.uuid4().hex}",
        type=type_,
        payload={"severity": "critical"},
        source=SOURCE,
    )


def count(registry: CollectorRegistry, metric: str, **labels: str) -> float:
    return registry.get_sample_value(metric, labels) or 0.0


def closed_port() -> int:
    """A loopback port with nobody listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_event_with_a_spec_starts_the_workflow_and_is_its_first_signal(
    delivery: Delivery, client: Client, registry: CollectorRegistry
) -> None:
    target = Target(namespace="shop", name=unique_name())
    event = envelope()

    result = await delivery.deliver("quarantine", target, event, start_spec={"hold_hours": 4})

    assert result.outcome is Outcome.DELIVERED
    assert result.workflow_id == workflow_id("quarantine", "shop", target.name)
    recording = await recorded(client, result.workflow_id)
    assert recording.input is not None
    assert recording.input.target == target
    assert recording.input.spec == {"hold_hours": 4}
    assert recording.events == [event]
    delivered = "autopilot_events_delivered_total"
    assert (
        count(registry, delivered, source=SOURCE, operator="quarantine", mode="signal_with_start")
        == 1
    )


async def test_an_event_without_a_spec_signals_the_running_workflow(
    delivery: Delivery, client: Client
) -> None:
    target = Target(namespace="shop", name=unique_name())
    first, second = envelope(), envelope("AlertResolved")
    await delivery.deliver("quarantine", target, first, start_spec={})

    result = await delivery.deliver("quarantine", target, second)

    assert result.outcome is Outcome.DELIVERED
    recording = await recorded(client, result.workflow_id, events=2)
    assert recording.events == [first, second]


async def test_a_signal_for_a_target_without_a_workflow_reports_no_such_workflow(
    delivery: Delivery, client: Client, registry: CollectorRegistry
) -> None:
    target = Target(namespace="shop", name=unique_name())

    result = await delivery.deliver("quarantine", target, envelope("AlertResolved"))

    assert result.outcome is Outcome.NO_SUCH_WORKFLOW
    assert result.attempts == 1
    assert "no running workflow" in result.detail
    unknown = "autopilot_events_unknown_target_total"
    assert count(registry, unknown, source=SOURCE, operator="quarantine") == 1
    assert (
        count(
            registry,
            "autopilot_events_failed_total",
            source=SOURCE,
            operator="quarantine",
            reason="refused",
        )
        == 0
    )


async def test_a_signal_for_a_finished_workflow_reports_no_such_workflow(
    delivery: Delivery, client: Client
) -> None:
    target = Target(namespace="shop", name=unique_name())
    started = await delivery.deliver("canary", target, envelope("Start"), start_spec={})
    await delivery.deliver("canary", target, envelope(STOP_EVENT))
    await client.get_workflow_handle(started.workflow_id).result()

    result = await delivery.deliver("canary", target, envelope("Late"))

    assert result.outcome is Outcome.NO_SUCH_WORKFLOW


async def test_events_for_one_workflow_arrive_in_the_order_given(
    delivery: Delivery, client: Client
) -> None:
    cart = Target(namespace="shop", name=unique_name("cart"))
    pay = Target(namespace="shop", name=unique_name("pay"))
    events = [envelope(f"Step{index}") for index in range(6)]
    requests = [
        DeliveryRequest("autoroute", cart if index % 2 == 0 else pay, event, {})
        for index, event in enumerate(events)
    ]

    results = await delivery.deliver_many(requests)

    assert [result.outcome for result in results] == [Outcome.DELIVERED] * 6
    assert [result.request for result in results] == requests
    cart_events = await recorded(client, requests[0].workflow_id, events=3)
    pay_events = await recorded(client, requests[1].workflow_id, events=3)
    assert cart_events.events == events[0::2]
    assert pay_events.events == events[1::2]


async def test_an_unreachable_temporal_fails_after_bounded_retries_without_raising() -> None:
    registry = CollectorRegistry()
    down = await connect(f"127.0.0.1:{closed_port()}", lazy=True)
    delivery = Delivery(
        down, task_queue=TASK_QUEUE, retry=QUICK, metrics=DeliveryMetrics.for_registry(registry)
    )
    target = Target(namespace="shop", name=unique_name())

    result = await delivery.deliver("quarantine", target, envelope(), start_spec={})

    assert result.outcome is Outcome.FAILED
    assert result.attempts == 3
    assert "unavailable" in result.detail.lower()
    labels = {"source": SOURCE, "operator": "quarantine"}
    assert count(registry, "autopilot_event_delivery_retries_total", **labels) == 2
    assert count(registry, "autopilot_events_failed_total", reason="unavailable", **labels) == 1


async def test_later_events_for_a_workflow_are_held_back_when_an_earlier_one_failed() -> None:
    down = await connect(f"127.0.0.1:{closed_port()}", lazy=True)
    delivery = Delivery(
        down,
        task_queue=TASK_QUEUE,
        retry=QUICK,
        metrics=DeliveryMetrics.for_registry(CollectorRegistry()),
    )
    target = Target(namespace="shop", name=unique_name())
    firing = DeliveryRequest("quarantine", target, envelope(), {})
    resolved = DeliveryRequest("quarantine", target, envelope("AlertResolved"))

    first, second = await delivery.deliver_many([firing, resolved])

    assert first.outcome is Outcome.FAILED
    assert second.outcome is Outcome.FAILED
    assert second.attempts == 0
    assert "earlier event" in second.detail


async def test_a_missing_namespace_is_a_failure_not_a_missing_workflow(
    dev_server_env: WorkflowEnvironment,
) -> None:
    address = dev_server_env.client.service_client.config.target_host
    elsewhere = await connect(address, namespace=f"missing-{uuid.uuid4().hex[:6]}")
    delivery = Delivery(
        elsewhere,
        task_queue=TASK_QUEUE,
        retry=QUICK,
        metrics=DeliveryMetrics.for_registry(CollectorRegistry()),
    )

    result = await delivery.deliver(
        "quarantine", Target(namespace="shop", name=unique_name()), envelope()
    )

    assert result.outcome is Outcome.FAILED
    assert "namespace" in result.detail.lower()


async def test_a_client_without_the_pydantic_converter_is_refused(
    dev_server_env: WorkflowEnvironment,
) -> None:
    address = dev_server_env.client.service_client.config.target_host
    plain = await Client.connect(address)

    with pytest.raises(ValueError, match="pydantic_data_converter"):
        Delivery(plain, task_queue=TASK_QUEUE)


async def test_connect_gives_a_client_with_the_pydantic_converter(
    dev_server_env: WorkflowEnvironment,
) -> None:
    address = dev_server_env.client.service_client.config.target_host

    client = await connect(address)

    assert client.data_converter is pydantic_data_converter
    assert client.namespace == "default"
