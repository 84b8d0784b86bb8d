"""The Gateway API router against the real API server with the Gateway API's real CRDs."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import kube
from activities.canary import lifecycle
from activities.canary.gatewayapi import GatewayApiRouter
from models.canary import CanarySpec, load_canary_spec
from tests.canary.cluster import app_deployment, create_app, step_for
from tests.canary.specs import spec_dict

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("canary_env")]

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def gateway_spec() -> CanarySpec:
    spec = spec_dict()
    spec["provider"] = "gatewayapi:v1"
    spec["service"] = {
        "port": 9898,
        "hosts": ["podinfo.example.com"],
        "gatewayRefs": [{"name": "public", "namespace": "istio-ingress"}],
        "headers": {"request": {"set": {"x-routed-by": "autopilot"}}},
    }
    return load_canary_spec(spec)


def http_route(api: client.ApiClient, namespace: str, name: str = "podinfo") -> dict[str, Any]:
    result: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return result


def replace(api: client.ApiClient, namespace: str, obj: dict) -> None:
    client.CustomObjectsApi(api).replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj["metadata"]["name"], obj
    )


def backends(route: dict) -> list[tuple[str, int, int]]:
    return [(b["name"], b["port"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]]


async def initialized(kube_api: client.ApiClient, namespace: str) -> CanarySpec:
    create_app(kube_api, namespace, app_deployment("podinfo"))
    spec = gateway_spec()
    await ActivityEnvironment().run(lifecycle.initialize, step_for(spec, namespace))
    return spec


async def test_initialize_routes_all_traffic_to_the_primary_with_an_http_route(kube_api, namespace):
    await initialized(kube_api, namespace)

    route = http_route(kube_api, namespace)
    assert backends(route) == [("podinfo-primary", 9898, 100), ("podinfo-canary", 9898, 0)]
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert route["spec"]["hostnames"] == ["podinfo.example.com"]
    assert route["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"] == {
        "set": [{"name": "x-routed-by", "value": "autopilot"}]
    }
    assert route["metadata"]["annotations"][kube.MANAGED_BY] == "canary"
    custom = client.CustomObjectsApi(kube_api)
    for plural in ("virtualservices", "destinationrules"):
        listed: Any = custom.list_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, plural
        )
        assert listed["items"] == [], plural  # no Istio object for a Gateway API canary


async def test_a_reconcile_that_changes_nothing_writes_nothing(kube_api, namespace):
    spec = await initialized(kube_api, namespace)
    before = http_route(kube_api, namespace)["metadata"]["resourceVersion"]

    await GatewayApiRouter(spec, namespace, "canary/x/podinfo").reconcile()

    assert http_route(kube_api, namespace)["metadata"]["resourceVersion"] == before


async def test_a_stale_write_gets_409_and_keeps_the_other_writers_hand_edit(kube_api, namespace):
    spec = await initialized(kube_api, namespace)
    router = GatewayApiRouter(spec, namespace, "canary/x/podinfo")
    stale = await router.get_routes()
    # Someone adds a response header filter to our rule by hand after we read the route.
    edited = http_route(kube_api, namespace)
    edited["spec"]["rules"][0]["filters"] += [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"set": [{"name": "x-team", "value": "shop"}]},
        }
    ]
    replace(kube_api, namespace, edited)

    routes = await router.set_routes(90, 10, live=stale)

    assert routes.conflicts == 1
    route = http_route(kube_api, namespace)
    assert backends(route) == [("podinfo-primary", 9898, 90), ("podinfo-canary", 9898, 10)]
    assert route["spec"]["rules"][0]["filters"][-1]["responseHeaderModifier"]["set"] == [
        {"name": "x-team", "value": "shop"}
    ]


async def test_a_route_stripped_of_our_backends_gets_them_back(kube_api, namespace):
    spec = await initialized(kube_api, namespace)
    edited = http_route(kube_api, namespace)
    edited["spec"]["rules"][0]["backendRefs"] = [{"name": "podinfo", "port": 9898}]
    replace(kube_api, namespace, edited)

    routes = await GatewayApiRouter(spec, namespace, "canary/x/podinfo").set_routes(80, 20)

    assert (routes.primary, routes.canary) == (80, 20)
    assert backends(http_route(kube_api, namespace)) == [
        ("podinfo-primary", 9898, 80),
        ("podinfo-canary", 9898, 20),
    ]


async def test_an_http_route_of_someone_else_is_refused_not_taken_over(kube_api, namespace):
    spec = gateway_spec()
    theirs = GatewayApiRouter(spec, namespace, "w").http_route()
    theirs["metadata"]["annotations"] = {}
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, theirs
    )

    with pytest.raises(ApplicationError, match="not managed by autopilot"):
        await GatewayApiRouter(spec, namespace, "w").set_routes(50, 50)

    assert backends(http_route(kube_api, namespace))[0][2] == 100


def test_the_api_server_rejects_an_http_route_that_breaks_the_gateway_api_schema(
    kube_api, namespace
):
    route = GatewayApiRouter(gateway_spec(), namespace, "w").http_route()
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1

    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, route
        )

    assert refused.value.status == 422 and "weight" in str(refused.value.body)
