"""The SIMULATED data plane reads Gateway API HTTPRoutes: traffic follows their backend weights
and is reported with the same Istio metrics as a VirtualService's."""

from __future__ import annotations

from typing import Any

from devcluster.dataplane_sim.httproutes import as_virtual_service, as_virtual_services
from devcluster.dataplane_sim.metrics import IstioMetricStore
from devcluster.dataplane_sim.routing import MeshIndex, SyntheticRequest, select_http_route
from devcluster.dataplane_sim.traffic import INGRESS_GATEWAY, TrafficGenerator, TrafficSettings
from tests.test_dataplane_sim import deployment, service


def http_route(
    primary: int | None,
    canary: int | None,
    parents: list[dict[str, Any]] | None = None,
    matches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    refs = []
    for name, weight in (("podinfo-primary", primary), ("podinfo-canary", canary)):
        ref: dict[str, Any] = {"name": name, "port": 9898}
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    rule: dict[str, Any] = {"backendRefs": refs}
    if matches is not None:
        rule["matches"] = matches
    return {
        "metadata": {"name": "podinfo", "namespace": "shop", "uid": "route-1", "annotations": {}},
        "spec": {
            "parentRefs": parents
            if parents is not None
            else [{"name": "podinfo", "kind": "Service"}],
            "rules": [rule],
        },
    }


def traffic(routes: list[dict[str, Any]], ticks: int = 10) -> IstioMetricStore:
    """Ten requests a second for ``ticks`` seconds through the routes, as the simulator sends."""
    deployments = [
        deployment("podinfo-primary", labels={"app": "podinfo-primary"}, ready=2),
        deployment(
            "podinfo",
            labels={"app": "podinfo"},
            ready=2,
            annotations={"sim.autopilot.dev/error-rate": "0.5"},
        ),
    ]
    services = [
        service("podinfo-primary", selector={"app": "podinfo-primary"}),
        service("podinfo-canary", selector={"app": "podinfo"}),
    ]
    ready = {("shop", d["metadata"]["name"]): 2 for d in deployments}
    generator = TrafficGenerator(TrafficSettings(tick_seconds=1.0, default_rate=10))
    store = IstioMetricStore()
    for _ in range(ticks):
        index = MeshIndex(services, [], deployments)
        store.add(generator.tick(as_virtual_services(routes), index, [], ready, []))
    return store


def test_requests_follow_the_http_routes_backend_weights_with_istios_labels():
    store = traffic([http_route(90, 10)])

    primary = store.requests(reporter="destination", destination_workload="podinfo-primary")
    canary = store.requests(reporter="destination", destination_workload="podinfo")
    failed = store.requests(
        reporter="destination", destination_workload="podinfo", response_code="500"
    )
    assert (primary, canary, failed) == (90, 10, 5)
    assert (
        store.requests(
            reporter="destination", destination_service="podinfo-canary.shop.svc.cluster.local"
        )
        == 10
    )


def test_a_backend_without_a_weight_counts_one_as_the_gateway_api_says():
    store = traffic([http_route(None, 1)])

    assert store.requests(reporter="destination", destination_workload="podinfo-primary") == 50
    assert store.requests(reporter="destination", destination_workload="podinfo") == 50


def test_a_route_attached_to_a_gateway_is_sent_by_the_ingress_gateway():
    route = http_route(100, 0, parents=[{"name": "public", "namespace": "istio-ingress"}])

    [vs] = as_virtual_services([route])
    store = traffic([route])

    assert vs["spec"]["gateways"] == ["istio-ingress/public"]
    assert store.requests(reporter="source", source_workload=INGRESS_GATEWAY) == 100


def test_a_route_attached_to_nothing_sends_nothing():
    assert as_virtual_service(http_route(50, 50, parents=[])) is None
    assert traffic([http_route(50, 50, parents=[])]).requests(reporter="source") == 0


def test_path_prefixes_match_whole_segments_as_in_the_gateway_api():
    route = http_route(100, 0, matches=[{"path": {"type": "PathPrefix", "value": "/api/"}}])
    vs = as_virtual_service(route)
    assert vs is not None

    def takes(path: str) -> bool:
        return select_http_route(vs, SyntheticRequest(path=path)) is not None

    assert takes("/api") and takes("/api/v1")
    assert not takes("/apis") and not takes("/")


def test_exact_paths_methods_and_headers_become_istio_matches():
    match = {
        "path": {"type": "Exact", "value": "/token"},
        "method": "POST",
        "headers": [{"name": "x-canary", "value": "always"}],
        "queryParams": [{"type": "RegularExpression", "name": "v", "value": "2.*"}],
    }
    vs = as_virtual_service(http_route(0, 100, matches=[match]))

    assert vs is not None
    assert vs["spec"]["http"][0]["match"] == [
        {
            "uri": {"exact": "/token"},
            "method": {"exact": "POST"},
            "headers": {"x-canary": {"exact": "always"}},
            "queryParams": {"v": {"regex": "2.*"}},
        }
    ]
