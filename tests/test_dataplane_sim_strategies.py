"""The SIMULATED data plane honours what Flagger's strategies write: A/B matches on headers,
cookies and query parameters, mirrors, and the session-affinity cookie route.

The VirtualServices are built by the canary operator's own route builder
(``activities.canary.istio_routes``), so these tests say that what the operator writes is
what the simulated Envoy routes by. Pure: JSON objects in, counters out.
"""

from __future__ import annotations

import json
from typing import Any

from activities.canary.istio_routes import IstioRoutes, RouteOptions
from devcluster.dataplane_sim import annotations as ann
from devcluster.dataplane_sim.matching import CookieJar, parse_requests
from devcluster.dataplane_sim.metrics import IstioMetricStore
from devcluster.dataplane_sim.routing import MeshIndex, SyntheticRequest, select_http_route
from devcluster.dataplane_sim.traffic import TrafficGenerator, TrafficSettings
from tests.canary.specs import make_spec
from tests.test_dataplane_sim import deployment, service

REQUESTS = "sim.autopilot.dev/requests"
AB = [
    {"headers": {"x-canary": {"exact": "insider"}}},
    {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    {"queryParams": {"beta": {"exact": "1"}}},
]


class CanaryMesh:
    """podinfo as the canary operator lays it out: -primary and canary Deployments and
    Services, a VirtualService ``podinfo`` with the routes the builder writes."""

    def __init__(self, mix: list[dict[str, Any]], rate: float = 10) -> None:
        self.deployments = [
            deployment("podinfo-primary", namespace="test", labels={"app": "podinfo-primary"}),
            deployment("podinfo", namespace="test", labels={"app": "podinfo"}),
        ]
        for item in self.deployments:
            item["status"] = {"readyReplicas": 2}
        self.services = [
            service("podinfo-primary", "test", {"app": "podinfo-primary"}),
            service("podinfo-canary", "test", {"app": "podinfo"}),
        ]
        self.mix = mix
        self.http: list[Any] = []
        self.generator = TrafficGenerator(TrafficSettings(tick_seconds=1.0, default_rate=rate))
        self.store = IstioMetricStore()

    def route(self, spec_analysis: dict[str, Any], primary: int, canary: int, **options: Any):
        spec = make_spec("podinfo", **spec_analysis)
        builder = IstioRoutes(spec, "podinfo-primary", "podinfo-canary")
        self.http = builder.http(primary, canary, RouteOptions(**options))

    def tick(self, times: int = 1) -> None:
        annotations = {REQUESTS: json.dumps(self.mix)}
        vs = {
            "metadata": {"name": "podinfo", "namespace": "test", "annotations": annotations},
            "spec": {"hosts": ["podinfo"], "http": self.http},
        }
        for _ in range(times):
            index = MeshIndex(self.services, [], self.deployments)
            ready = {("test", "podinfo-primary"): 2, ("test", "podinfo"): 2}
            self.store.add(self.generator.tick([vs], index, [], ready, []))

    def got(self, client: str, workload: str, reporter: str = "source") -> int:
        """Requests of one client that ``workload`` answered, as one reporter saw them."""
        return self.store.requests(
            reporter=reporter, source_workload=client, destination_workload=workload
        )


A_B = {"stepWeight": None, "maxWeight": None, "iterations": 3, "match": AB}


def test_during_an_ab_test_only_requests_matching_a_header_a_cookie_or_a_query_reach_the_canary():
    mesh = CanaryMesh(
        [
            {"name": "insiders", "headers": {"X-Canary": "insider"}, "source": "insiders"},
            {"name": "cookie", "cookies": {"canary": "always", "theme": "dark"}, "source": "c"},
            {"name": "beta", "query": {"beta": "1"}, "source": "beta"},
            {"name": "others", "share": 2, "headers": {"x-canary": "no"}, "source": "others"},
        ]
    )
    mesh.route(A_B, 0, 100)
    mesh.tick(10)  # 100 requests: 20 of each class, 40 others

    for client in ("insiders", "c", "beta"):
        assert (mesh.got(client, "podinfo"), mesh.got(client, "podinfo-primary")) == (20, 0)
    assert (mesh.got("others", "podinfo"), mesh.got("others", "podinfo-primary")) == (0, 40)


def test_after_an_ab_test_matching_requests_are_back_on_the_primary():
    mesh = CanaryMesh([{"headers": {"x-canary": "insider"}, "source": "insiders"}])
    mesh.route(A_B, 100, 0)
    mesh.tick(3)

    assert (mesh.got("insiders", "podinfo"), mesh.got("insiders", "podinfo-primary")) == (0, 30)


def test_a_mirror_copies_its_share_to_the_canary_whose_sidecar_alone_reports_the_copies():
    blue_green = {"stepWeight": None, "maxWeight": None, "iterations": 3, "mirror": True}
    mesh = CanaryMesh([{"source": "users"}])
    mesh.route({**blue_green, "mirrorWeight": 50}, 100, 0, mirror=True)
    mesh.tick(10)

    assert mesh.got("users", "podinfo-primary") == 100  # every user answered by the primary
    assert mesh.got("users", "podinfo-primary", "destination") == 100
    assert mesh.got("users", "podinfo", "destination") == 50  # the canary saw half, copied
    assert mesh.got("users", "podinfo", "source") == 0  # no client got the canary's answer


def test_a_user_who_got_the_affinity_cookie_keeps_reaching_the_canary_until_the_route_goes():
    affinity = {"sessionAffinity": {"cookieName": "flagger-cookie", "maxAge": 3600}}
    mesh = CanaryMesh([{"name": "returning", "users": 20, "source": "returning"}])
    mesh.route(affinity, 90, 10, cookie="flagger-cookie=abc123")
    mesh.tick(1)  # 10 requests: one reaches the canary and gets the cookie
    assert mesh.got("returning", "podinfo") == 1

    mesh.tick(39)  # 20 users, 20 requests each
    to_canary = mesh.got("returning", "podinfo")
    assert to_canary > 200  # far beyond the 10 % weight: nobody who got there left

    mesh.route(affinity, 100, 0)  # promoted or rolled back: the cookie route is gone
    before = mesh.got("returning", "podinfo-primary")
    mesh.tick(5)
    assert mesh.got("returning", "podinfo") == to_canary
    assert mesh.got("returning", "podinfo-primary") == before + 50


def test_a_client_without_users_keeps_no_cookie_and_follows_the_weights():
    affinity = {"sessionAffinity": {"cookieName": "flagger-cookie"}}
    mesh = CanaryMesh([{"source": "curl"}])
    mesh.route(affinity, 90, 10, cookie="flagger-cookie=abc123")
    mesh.tick(40)

    assert mesh.got("curl", "podinfo") == 40


def test_a_cookie_jar_keeps_a_cookie_for_its_max_age_and_forgets_a_deleted_one():
    jar = CookieJar()
    jar.take("flagger-cookie=abc; Max-Age=10", now=0)
    assert jar.current(5) == {"flagger-cookie": "abc"}
    assert jar.current(10) == {}
    jar.take("a=1", now=0)
    jar.take("a=1; Max-Age=-1", now=1)
    assert jar.current(2) == {}


def test_header_names_match_in_lowercase_and_regexes_match_the_whole_value():
    route = {"match": [{"headers": {"user-agent": {"regex": ".*Firefox.*"}}}], "route": []}
    vs = {"spec": {"http": [route]}}
    firefox = SyntheticRequest(path="/", headers={"user-agent": "Mozilla/5.0 Firefox/120"})
    assert select_http_route(vs, firefox) is not None
    partial = {"headers": {"user-agent": {"regex": "Fire"}}}
    bare = {"spec": {"http": [{**route, "match": [partial]}]}}
    assert select_http_route(bare, firefox) is None
    absent: dict[str, Any] = {"match": [{"withoutHeaders": {"x-canary": {}}}], "route": []}
    without = {"spec": {"http": [absent]}}
    assert select_http_route(without, SyntheticRequest(path="/")) is not None
    assert select_http_route(without, SyntheticRequest(path="/", headers={"x-canary": "1"})) is None


def test_a_request_mix_that_does_not_parse_falls_back_to_plain_requests_and_says_why():
    problems: list[str] = []
    vs = {"metadata": {"annotations": {REQUESTS: '[{"share": -1}]'}}}
    behaviour = ann.route_behaviour(vs, 10, ann.SourceRef("client"), problems)
    assert behaviour.requests == ()
    assert problems and "share must be a number" in problems[0]
    [only] = parse_requests('[{"headers": {"X-A": "b"}, "users": 3}]')
    assert only.headers == {"x-a": "b"} and only.users == 3
