"""The one entry point (webhooks beside the watchers) and the Lease that elects one watcher."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest
from kubernetes import client
from temporalio.client import Client

from service.settings import WebhookSettings
from tests.watchers.support import eventually, make_delivery, settings
from watchers.kube.client import KubeCalls
from watchers.lease import LeaderElector
from watchers.runner import run_watchers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.mark.temporal
@pytest.mark.cluster
async def test_run_watchers_serves_webhooks_and_returns_once_stopped(
    temporal: Client, standin_queue: str, namespace: str
) -> None:
    port = free_port()
    watch = settings(namespace, kubernetes=False, prometheus=False, webhooks=True)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_watchers(
            watch,
            make_delivery(temporal, standin_queue),
            stop,
            webhook_settings=WebhookSettings(port=port),
        )
    )

    await eventually(lambda: asyncio.to_thread(healthy, port))
    stop.set()
    await asyncio.wait_for(task, 30)

    assert not await asyncio.to_thread(healthy, port)


class Candidate:
    """One replica campaigning for the Lease; it leads until stopped, or until it dies."""

    def __init__(self, api: client.ApiClient, namespace: str, identity: str) -> None:
        self.elector = LeaderElector(
            KubeCalls(api),
            namespace,
            "watchers-lease-test",
            identity,
            duration_s=4.0,
            renew_deadline_s=3.0,
            retry_s=0.2,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.elector.run(self._lead, self.stop))

    @staticmethod
    async def _lead(lost: asyncio.Event) -> None:
        await lost.wait()

    def die(self) -> None:
        """A crash: no more renewals, no release."""
        self.task.cancel()


@pytest.mark.cluster
async def test_a_standby_replica_takes_over_when_the_leader_goes_silent(
    kube_api: client.ApiClient, namespace: str
) -> None:
    first = Candidate(kube_api, namespace, "first")
    await eventually(lambda: first.elector.leading)
    second = Candidate(kube_api, namespace, "second")
    await asyncio.sleep(0.5)  # let the second one campaign a few times
    assert not second.elector.leading  # the Lease is held and renewed

    first.die()
    await eventually(lambda: second.elector.leading)
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "watchers-lease-test", namespace
    )
    second.stop.set()
    await asyncio.wait_for(second.task, 30)
    released = client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "watchers-lease-test", namespace
    )

    assert lease.spec is not None and released.spec is not None
    assert lease.spec.holder_identity == "second"
    assert lease.spec.lease_transitions == 1
    assert released.spec.holder_identity is None  # a clean stop hands the Lease over at once
