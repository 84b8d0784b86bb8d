"""Flagger's strategies end to end on the local cluster: A/B testing, blue/green with
mirroring, canary with session affinity, each with a healthy and a faulty version.

Real API server (with Istio's CRDs), Prometheus and Temporal; the simulated data plane
sends a request mix (``sim.autopilot.dev/requests``) whose classes come from their own
client workloads, so Istio's metrics tell who got what. Intervals are seconds; every wait is
functional."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes import client
from prometheus_api_client import PrometheusConnect
from temporalio.client import WorkflowHandle

from models.operator import OperatorStatus
from tests.canary.cluster import ERROR_RATE, new_revision, virtual_service
from tests.canary.e2e import Rollouts, WeightRecorder
from tests.canary.histories import record_if_asked
from tests.canary.test_canary_e2e import V2, canary_spec, deployed
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: The simulator's request mix of a VirtualService.
REQUESTS = "sim.autopilot.dev/requests"
INSIDERS = {"headers": {"x-canary": {"exact": "insider"}}}
STICKY_COOKIE = "flagger-cookie"


class RouteRecorder(WeightRecorder):
    """Watches the VirtualService and keeps every distinct list of http routes it had."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        super().__init__(api, namespace, name)
        self.shapes: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _record(self, obj: dict[str, Any]) -> None:
        http = obj["spec"].get("http") or []
        with self._lock:
            if not self.shapes or self.shapes[-1] != http:
                self.shapes.append(http)


def send_mix(api: client.ApiClient, namespace: str, *classes: dict[str, Any]) -> None:
    """Give the simulated clients of ``podinfo`` a request mix."""
    patch: Any = {"metadata": {"annotations": {REQUESTS: json.dumps(list(classes))}}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", "podinfo", patch
    )


class Traffic:
    """What Istio's metrics (as Prometheus has them) say each client got."""

    def __init__(self, prometheus_url: str, namespace: str) -> None:
        self.prometheus = PrometheusConnect(url=prometheus_url, disable_ssl=True)
        self.namespace = namespace

    def requests(self, client_name: str, workload: str, reporter: str = "source", **more: str):
        labels = {
            "reporter": reporter,
            "source_workload": client_name,
            "source_workload_namespace": self.namespace,
            "destination_workload": workload,
            **more,
        }
        selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
        result = self.prometheus.custom_query(f"sum(istio_requests_total{{{selector}}})")
        return float(result[0]["value"][1]) if result else 0.0


async def roll_out(
    rollouts: Rollouts,
    kube_api: client.ApiClient,
    namespace: str,
    spec: dict[str, Any],
    healthy: bool,
    mix: list[dict[str, Any]],
    meanwhile: Callable[[], Awaitable[Any]] | None = None,
) -> tuple[OperatorStatus, RouteRecorder, WorkflowHandle]:
    """Bootstrap podinfo, give its clients ``mix``, roll out V2 (faulty: half its requests
    fail) with ``spec`` to its end, recording every shape of the routes on the way."""
    await deployed(rollouts, kube_api, namespace, spec)
    send_mix(kube_api, namespace, *mix)
    recorder = RouteRecorder(kube_api, namespace, "podinfo")
    with recorder:
        new_revision(kube_api, namespace, "podinfo", V2, {} if healthy else {ERROR_RATE: "0.5"})
        handle = await rollouts.start(namespace, "podinfo", spec)
        if meanwhile is not None:
            await meanwhile()
        status = await rollouts.wait_for(handle, "Succeeded" if healthy else "Failed")
    return status, recorder, handle


def strategy_spec(**analysis: Any) -> dict[str, Any]:
    """The e2e canary spec (2 s steps, success rate over 6 s), with a strategy."""
    return canary_spec(**analysis)


# -- A/B testing --------------------------------------------------------------------------

A_B = strategy_spec(stepWeight=None, maxWeight=None, iterations=3, match=[INSIDERS])


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "faulty"])
async def test_an_ab_test_routes_only_matching_requests_to_the_canary_then_decides(
    rollouts: Rollouts, kube_api, namespace, prometheus_url, healthy
):
    traffic = Traffic(prometheus_url, namespace)
    mix = [
        {"name": "insiders", "share": 4, "headers": {"x-canary": "insider"}, "source": "insiders"},
        {"name": "everyone", "share": 6, "source": "everyone"},
    ]

    async def insiders_reach_the_canary() -> None:
        await eventually(lambda: traffic.requests("insiders", "podinfo"), what="insiders")

    status, recorder, handle = await roll_out(
        rollouts, kube_api, namespace, A_B, healthy, mix, insiders_reach_the_canary
    )
    if healthy:
        await record_if_asked(handle, "canary_ab_test_promoted")

    primary, canary = "podinfo-primary", "podinfo-canary"
    port = {"number": 9898}
    analysed = [
        {
            "match": [INSIDERS],
            "route": [
                {"destination": {"host": primary, "port": port}, "weight": 0},
                {"destination": {"host": canary, "port": port}, "weight": 100},
            ],
        },
        {"route": [{"destination": {"host": primary, "port": port}, "weight": 100}]},
    ]
    assert analysed in recorder.shapes
    final = virtual_service(kube_api, namespace, "podinfo")["spec"]["http"]
    assert final[0]["match"] == [INSIDERS] and [r["weight"] for r in final[0]["route"]] == [100, 0]
    assert final[1] == analysed[1]
    assert traffic.requests("everyone", "podinfo") == 0  # nobody else ever met the canary
    if healthy:
        assert status.data["outcome"] == "promoted" and status.data["iterations"] >= 3
        assert status.data["applied_weights"] == [0, 100, 0]
    else:
        assert status.data["outcome"] == "rolled back"
        assert "request-success-rate" in status.data["failure"]


# -- blue/green with mirroring ------------------------------------------------------------

BLUE_GREEN = strategy_spec(
    stepWeight=None, maxWeight=None, iterations=3, mirror=True, mirrorWeight=60
)


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "faulty"])
async def test_a_blue_green_mirrors_live_traffic_to_the_canary_while_the_primary_answers(
    rollouts: Rollouts, kube_api, namespace, prometheus_url, healthy
):
    traffic = Traffic(prometheus_url, namespace)
    mix = [{"name": "users", "source": "users"}]
    status, recorder, handle = await roll_out(
        rollouts, kube_api, namespace, BLUE_GREEN, healthy, mix
    )
    if healthy:
        await record_if_asked(handle, "canary_blue_green_mirror_promoted")

    mirrored = [r for shape in recorder.shapes for r in shape if "mirror" in r]
    assert mirrored, recorder.shapes
    assert mirrored[0]["mirror"] == {"host": "podinfo-canary", "port": {"number": 9898}}
    assert mirrored[0]["mirrorPercentage"] == {"value": 60.0}
    assert [r["weight"] for r in mirrored[0]["route"]] == [100, 0]  # traffic on the primary
    final = virtual_service(kube_api, namespace, "podinfo")["spec"]["http"]
    assert len(final) == 1 and "mirror" not in final[0]
    assert [r["weight"] for r in final[0]["route"]] == [100, 0]
    # The canary's sidecar reported the copies it got; the users' answers came from the
    # primary (with the faulty version, not one of its errors reached a user).
    assert traffic.requests("users", "podinfo", reporter="destination") > 0
    assert traffic.requests("users", "podinfo-primary") > 0
    if healthy:
        assert status.data["outcome"] == "promoted" and status.data["iterations"] >= 3
        # Flagger's order: all traffic on the analysed canary while the primary rolls out.
        assert status.data["applied_weights"] == [0, 100, 0]
    else:
        assert status.data["outcome"] == "rolled back"
        assert traffic.requests("users", "podinfo", reporter="source") == 0
        assert traffic.requests("users", "podinfo-primary", response_code="500") == 0


# -- canary with session affinity ----------------------------------------------------------

AFFINITY = strategy_spec(
    maxWeight=30,
    threshold=1,
    sessionAffinity={"cookieName": STICKY_COOKIE, "maxAge": 600},
)


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "faulty"])
async def test_users_a_canary_with_session_affinity_reached_stay_on_it_until_it_is_decided(
    rollouts: Rollouts, kube_api, namespace, prometheus_url, healthy
):
    traffic = Traffic(prometheus_url, namespace)
    mix = [
        {"name": "returning", "share": 5, "users": 10, "source": "returning"},
        {"name": "anonymous", "share": 5, "source": "anonymous"},  # keeps no cookie
    ]
    status, recorder, _ = await roll_out(rollouts, kube_api, namespace, AFFINITY, healthy, mix)

    sticky = [shape for shape in recorder.shapes if shape[0].get("name") == "sticky-route"]
    assert sticky, recorder.shapes
    cookie_route, weighted = sticky[0]
    [regex] = [m["headers"]["cookie"]["regex"] for m in cookie_route["match"]]
    assert f"{STICKY_COOKIE}=" in regex
    assert [r["weight"] for r in cookie_route["route"]] == [0, 100]
    set_cookie = weighted["route"][1]["headers"]["response"]["add"]["Set-Cookie"]
    assert set_cookie.startswith(f"{STICKY_COOKIE}=") and set_cookie.endswith("; Max-Age=600")
    assert weighted["route"][1]["weight"] == 10
    final = virtual_service(kube_api, namespace, "podinfo")["spec"]["http"]
    assert len(final) == 1 and [r["weight"] for r in final[0]["route"]] == [100, 0]
    assert "headers" not in final[0]["route"][1]  # the cookie route and Set-Cookie are gone

    def share(name: str) -> float:
        on_canary = traffic.requests(name, "podinfo")
        return on_canary / max(1.0, on_canary + traffic.requests(name, "podinfo-primary"))

    if healthy:
        assert status.data["outcome"] == "promoted"
        assert status.data["applied_weights"] == [0, 10, 20, 30, 0]
        # Same weights, same times: users who keep the cookie stayed on the canary.
        assert share("returning") > share("anonymous") > 0
    else:
        assert status.data["outcome"] == "rolled back"
        assert status.data["applied_weights"] == [0, 10, 0]
