"""The quarantine operator end to end on the local cluster.

Real: kube-apiserver with Istio's CRDs, Prometheus, Temporal, the quarantine workflow and
workers (in this process). Simulated: pods and Envoy (the cluster's data-plane simulator,
which honours the DENY policy by answering 403). The alert takes the webhook's path minus
HTTP: ``route_alerts`` then ``Delivery`` (signal-with-start). Every wait is functional.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from kubernetes import client

from models.operator import (
    COMMAND_UPDATE,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    OperatorStatus,
    workflow_id,
)
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.cluster import create_app, deployment, policies
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]


def mesh_objects(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The DestinationRule and VirtualService that route the simulator's traffic to ``name``."""
    destination_rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": {"host": name, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    virtual_service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": "v1"}}]}],
        },
    }
    return [("destinationrules", destination_rule), ("virtualservices", virtual_service)]


class Prometheus:
    """Instant PromQL queries against the cluster's Prometheus."""

    def __init__(self, url: str, namespace: str, workload: str) -> None:
        self.url = url
        self.selector = (
            f'reporter="destination",destination_workload_namespace="{namespace}",'
            f'destination_workload="{workload}"'
        )

    async def value(self, query: str) -> float | None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/query", params={"query": query}) as response,
        ):
            body = await response.json()
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    async def success_rate(self, window: str = "10s") -> float | None:
        """Percent of requests answered 2xx. (Flagger's query counts only 5xx as failures,
        so it would not see a quarantine: a denied request is a 403.)"""
        ok = f'sum(rate(istio_requests_total{{{self.selector},response_code=~"2.."}}[{window}]))'
        total = f"sum(rate(istio_requests_total{{{self.selector}}}[{window}]))"
        return await self.value(f"{ok} / {total} * 100")

    async def denied_per_second(self, window: str = "10s") -> float | None:
        return await self.value(
            f'sum(rate(istio_requests_total{{{self.selector},response_code="403"}}[{window}]))'
        )


async def test_an_alert_isolates_a_live_workload_and_release_lets_traffic_through_again(
    cluster_worker, kube_api, namespace, prometheus_url
):
    create_app(kube_api, namespace, "web")
    custom = client.CustomObjectsApi(kube_api)
    for plural, body in mesh_objects("web"):
        custom.create_namespaced_custom_object("networking.istio.io", "v1", namespace, plural, body)
    prometheus = Prometheus(prometheus_url, namespace, "web")
    await eventually(prometheus.success_rate, lambda rate: rate == 100)

    await deliver(cluster_worker.client, cluster_worker.task_queue, alert(namespace, "web"))
    handle = cluster_worker.client.get_workflow_handle(
        workflow_id("quarantine", namespace, "web"), result_type=OperatorStatus
    )

    async def status() -> OperatorStatus:
        return await handle.query(STATUS_QUERY, result_type=OperatorStatus)

    isolated = await eventually(
        status, lambda s: s.state == "Isolated" and bool(s.data["evidence"])
    )
    assert isolated.data["policy"] == "web-quarantine"
    assert [p["metadata"]["name"] for p in policies(kube_api, namespace)] == ["web-quarantine"]
    assert (
        deployment(kube_api, namespace, "web")["metadata"]["labels"]["autopilot.dev/quarantined"]
        == "true"
    )
    await eventually(prometheus.success_rate, lambda r: r is not None and r < 50)
    assert (await prometheus.denied_per_second() or 0) > 0

    receipt = await handle.execute_update(
        COMMAND_UPDATE,
        CommandRequest(command="release", by="sec-oncall", reason="false positive"),
        result_type=CommandReceipt,
    )
    result = await handle.result()

    assert (receipt.state, receipt.now) == ("Isolated", "Released")
    assert result.state == "Released" and result.final
    assert policies(kube_api, namespace) == []
    assert (
        "autopilot.dev/quarantined"
        not in deployment(kube_api, namespace, "web")["metadata"]["labels"]
    )
    await eventually(lambda: prometheus.success_rate("5s"), lambda r: r is not None and r == 100)
