"""The Gateway API provider without a cluster: which specs load, and the HTTPRoute built."""

from __future__ import annotations

import pytest

from activities.canary.gatewayapi import GatewayApiRouter
from activities.canary.routing import IstioRouter, router_for
from models.canary import load_canary_spec
from tests.canary.specs import spec_dict
from tests.canary.test_canary_spec import problems_of

#: Flagger's Gateway API tutorial, as a whole manifest.
FLAGGER_GATEWAY_API = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    hosts:
      - www.example.com
    gatewayRefs:
      - name: gateway
        namespace: istio-ingress
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
"""


def gateway_spec(**service):
    spec = spec_dict()
    spec["provider"] = "gatewayapi:v1"
    spec["service"] = {"port": 9898, "gatewayRefs": [{"name": "gateway"}], **service}
    return spec


def test_flaggers_gateway_api_manifest_loads_unchanged():
    spec = load_canary_spec(FLAGGER_GATEWAY_API)

    assert spec.provider == "gatewayapi:v1" and spec.gateway_api
    [ref] = spec.service.gateway_refs
    assert (ref.name, ref.namespace, ref.kind) == ("gateway", "istio-ingress", "Gateway")


def test_the_provider_chooses_the_router_and_istio_stays_the_default():
    istio = load_canary_spec(spec_dict())
    gateway = load_canary_spec(gateway_spec())
    older = load_canary_spec({**gateway_spec(), "provider": "gatewayapi:v1beta1"})

    assert istio.provider == "istio"
    assert isinstance(router_for(istio, "shop", "canary/shop/podinfo"), IstioRouter)
    assert isinstance(router_for(gateway, "shop", "canary/shop/podinfo"), GatewayApiRouter)
    older_router = router_for(older, "shop", "canary/shop/podinfo")
    assert isinstance(older_router, GatewayApiRouter)
    assert older_router.http_route()["apiVersion"] == "gateway.networking.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("service", "field", "words"),
    [
        ({"gateways": ["istio-system/public"]}, "spec.service.gateways", "service.gatewayRefs"),
        ({"trafficPolicy": {"tls": {"mode": "DISABLE"}}}, "spec.service.trafficPolicy", "Istio"),
        ({"retries": {"attempts": 3}}, "spec.service.retries", "Istio route option"),
        ({"gatewayRefs": []}, "spec.service.gatewayRefs", "at least one is required"),
        ({"timeout": "1.5s"}, "spec.service.timeout", "not a Gateway API duration"),
        ({"headers": {"request": {"set": ["x-a"]}}}, "spec.service.headers", "mapping"),
        ({"headers": {"request": {"set": {"x a": "1"}}}}, "spec.service.headers", "header name"),
        ({"hosts": [f"h{i}.example.com" for i in range(17)]}, "spec.service.hosts", "at most 16"),
    ],
)
def test_what_an_http_route_cannot_honour_is_refused_naming_the_field(service, field, words):
    manifest = {"apiVersion": "autopilot.dev/v1alpha1", "kind": "Canary"}
    problems = problems_of({**manifest, "spec": gateway_spec(**service)})

    assert any(p.startswith(f"{field}:") and words in p for p in problems), problems


def test_gateway_refs_without_the_gateway_api_provider_are_refused():
    spec = spec_dict()
    spec["service"]["gatewayRefs"] = [{"name": "gateway"}]

    assert problems_of(spec) == ["service.gatewayRefs: needs provider gatewayapi:v1 (not istio)"]


def test_an_unknown_provider_is_refused_listing_the_known_ones():
    [problem] = problems_of({**spec_dict(), "provider": "linkerd"})

    assert problem.startswith("provider:") and "'gatewayapi:v1'" in problem


def test_the_http_route_splits_one_rule_between_primary_and_canary_on_the_service_port():
    spec = load_canary_spec(
        gateway_spec(
            hosts=["app.example.com"],
            timeout="30s",
            gatewayRefs=[
                {"name": "public", "namespace": "istio-ingress", "sectionName": "https"},
                {"name": "podinfo", "group": "", "kind": "Service", "port": 9898},
            ],
        )
    )
    router = GatewayApiRouter(spec, "shop", "canary/shop/podinfo")

    route = router.http_route(90, 10)

    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["metadata"]["name"] == "podinfo" and route["metadata"]["namespace"] == "shop"
    assert route["metadata"]["annotations"]["autopilot.dev/managed-by"] == "canary"
    assert route["spec"]["parentRefs"] == [
        {
            "name": "public",
            "namespace": "istio-ingress",
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "sectionName": "https",
        },
        {"name": "podinfo", "group": "", "kind": "Service", "port": 9898},
    ]
    assert route["spec"]["hostnames"] == ["app.example.com"]
    [rule] = route["spec"]["rules"]
    assert [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]] == [
        ("podinfo-primary", 9898, 90),
        ("podinfo-canary", 9898, 10),
    ]
    assert rule["timeouts"] == {"request": "30s"}
    assert router.weights(route) == (90, 10)


def test_without_hosts_the_route_takes_every_hostname_of_its_gateways():
    route = GatewayApiRouter(load_canary_spec(gateway_spec()), "shop", "w").http_route()

    assert "hostnames" not in route["spec"]
    assert "timeouts" not in route["spec"]["rules"][0]


def test_a_route_without_our_two_backends_has_no_weights_to_read():
    router = GatewayApiRouter(load_canary_spec(gateway_spec()), "shop", "w")
    route = router.http_route()
    route["spec"]["rules"][0]["backendRefs"].pop()

    assert router.weights(route) is None
    assert router.weights({"spec": {}}) is None


def test_istio_headers_become_the_rules_header_modifier_filters_as_in_flagger():
    headers = {
        "request": {"set": {"x-version": "canary"}, "remove": ["x-debug"]},
        "response": {"add": {"x-served-by": "autopilot"}},
    }
    router = GatewayApiRouter(load_canary_spec(gateway_spec(headers=headers)), "shop", "w")

    [rule] = router.http_route()["spec"]["rules"]

    assert rule["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "x-version", "value": "canary"}],
                "remove": ["x-debug"],
            },
        },
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "autopilot"}]},
        },
    ]
