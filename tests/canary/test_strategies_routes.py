"""The routes of each of Flagger's strategies, the plan they run and the spec rules that pick
them, as pure functions (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.canary.istio_routes import (
    STICKY_ROUTE,
    IstioRoutes,
    RouteOptions,
    affinity_cookie,
    route_options,
)
from models.canary import CanarySpecError, load_canary_spec
from models.traffic import Strategy
from tests.canary.cluster import step_for
from tests.canary.specs import make_spec, spec_dict
from workflows.canary import effects
from workflows.engine import Ctx

PORT = {"number": 9898}
INSIDERS = {"headers": {"x-canary": {"exact": "insider"}}}
A_B: dict[str, Any] = {"stepWeight": None, "maxWeight": None, "iterations": 4, "match": [INSIDERS]}
BLUE_GREEN: dict[str, Any] = {"stepWeight": None, "maxWeight": None, "iterations": 3}
AFFINITY = {"sessionAffinity": {"cookieName": "flagger-cookie", "maxAge": 21600}}


def to(host: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": f"podinfo-{host}", "port": PORT}, "weight": weight}


def routes(**analysis: Any) -> IstioRoutes:
    return IstioRoutes(make_spec("podinfo", **analysis), "podinfo-primary", "podinfo-canary")


def test_an_ab_test_sends_matching_requests_to_the_canary_and_the_rest_to_the_primary():
    http = routes(**A_B).http(0, 100, RouteOptions())

    assert http == [
        {"match": [INSIDERS], "route": [to("primary", 0), to("canary", 100)]},
        {"route": [to("primary", 100)]},
    ]
    assert routes(**A_B).weights(http) == (0, 100)


def test_an_ab_test_runs_iterations_analyses_at_weight_100_of_the_matching_requests():
    spec = make_spec("podinfo", **{**A_B, "stepWeight": 10, "maxWeight": 50})

    assert spec.analysis.strategy == Strategy.AB_TESTING  # match wins over stepWeight
    assert spec.analysis.weight_plan() == [100, 100, 100, 100]


def test_service_match_is_merged_into_every_route_with_the_ab_headers_on_top():
    service_match = [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}]
    spec = spec_dict("podinfo", **A_B)
    spec["service"]["match"] = service_match
    builder = IstioRoutes(load_canary_spec(spec), "podinfo-primary", "podinfo-canary")

    matched, rest = builder.http(0, 100, RouteOptions())

    assert matched["match"] == [{**m, **INSIDERS} for m in service_match]
    assert rest["match"] == service_match


def test_a_blue_green_mirror_keeps_traffic_on_the_primary_and_copies_mirror_weight_percent():
    http = routes(**BLUE_GREEN, mirror=True, mirrorWeight=40).http(100, 0, RouteOptions(True))

    assert http == [
        {
            "route": [to("primary", 100), to("canary", 0)],
            "mirror": {"host": "podinfo-canary", "port": PORT},
            "mirrorPercentage": {"value": 40.0},
        }
    ]


def test_without_mirror_weight_istio_mirrors_every_request():
    [route] = routes(**BLUE_GREEN, mirror=True).http(100, 0, RouteOptions(mirror=True))
    assert route["mirror"]["host"] == "podinfo-canary" and "mirrorPercentage" not in route


def test_mirroring_runs_only_while_analysing_at_weight_0():
    spec = make_spec("podinfo", **BLUE_GREEN, mirror=True)

    assert route_options(step_for(spec, "test", "Progressing"), 0).mirror
    assert not route_options(step_for(spec, "test", "Promoting"), 100).mirror
    assert not route_options(step_for(spec, "test", "Finalising"), 0).mirror


def test_a_canary_with_mirror_mirrors_one_step_before_its_first_weight():
    assert make_spec("podinfo", mirror=True).analysis.weight_plan() == [0, 10, 20, 30, 40, 50]


def test_session_affinity_adds_the_cookie_route_and_set_cookie_on_the_canary_while_it_has_weight():
    builder = routes(**AFFINITY)
    cookie = "flagger-cookie=0123abcd"

    sticky, weighted = builder.http(90, 10, RouteOptions(cookie=cookie))

    assert sticky == {
        "name": STICKY_ROUTE,
        "match": [{"headers": {"cookie": {"regex": "^(.*?; ?)?flagger-cookie=0123abcd(;.*)?$"}}}],
        "route": [to("primary", 0), to("canary", 100)],
    }
    set_cookie = {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=21600"}}}
    assert weighted == {"route": [to("primary", 90), {**to("canary", 10), "headers": set_cookie}]}
    assert builder.weights([sticky, weighted]) == (90, 10)  # the weighted route's, not sticky's
    assert builder.http(100, 0, RouteOptions()) == [
        {"route": [to("primary", 100), to("canary", 0)]}
    ]


def test_the_affinity_cookie_is_stable_for_one_attempt_and_new_for_a_retry_or_a_revision():
    spec = make_spec("podinfo", **AFFINITY)
    first = affinity_cookie(step_for(spec, "test", "Progressing", revision="a1", attempt=0))

    assert first == affinity_cookie(step_for(spec, "test", "Promoting", revision="a1", attempt=0))
    assert first != affinity_cookie(step_for(spec, "test", "Progressing", revision="a1", attempt=1))
    assert first != affinity_cookie(step_for(spec, "test", "Progressing", revision="b2", attempt=0))
    assert first.startswith("flagger-cookie=")
    progressing = step_for(spec, "test", "Progressing", revision="a1")
    assert route_options(progressing, 10).cookie == first
    assert route_options(progressing, 0).cookie is None  # no weight, no cookie route


@pytest.mark.parametrize(
    ("analysis", "field", "words"),
    [
        ({"match": [INSIDERS]}, "analysis.match", "needs iterations"),
        ({**A_B, "mirror": True}, "analysis.mirror", "does not combine with match"),
        ({"mirrorWeight": 20}, "analysis.mirrorWeight", "needs mirror: true"),
        ({**BLUE_GREEN, **AFFINITY}, "analysis.sessionAffinity", "needs stepWeight"),
        (
            {**A_B, "match": [{"headers": {"X-Canary": {"exact": "a"}}}]},
            "analysis.match[0]",
            "'x-canary'",
        ),
        (
            {**A_B, "match": [{"headers": {"ua": {"suffix": "x"}}}]},
            "analysis.match[0]",
            "regex such as",
        ),
        (
            {**A_B, "match": [{"headers": {"ua": {"regex": "("}}}]},
            "analysis.match[0]",
            "does not compile",
        ),
        (
            {**A_B, "match": [{"queryParams": {"q": {"prefix": "a"}}}]},
            "analysis.match[0]",
            "not prefix",
        ),
        ({**A_B, "match": [{}]}, "analysis.match[0]", "admits every request"),
        (
            {**AFFINITY, "sessionAffinity": {"cookieName": "a b"}},
            "analysis.sessionAffinity",
            "pattern",
        ),
    ],
)
def test_a_strategy_missing_what_it_needs_is_refused_naming_the_field(analysis, field, words):
    with pytest.raises(CanarySpecError) as refused:
        load_canary_spec(spec_dict("podinfo", **analysis))
    assert any(p.startswith(field) and words in p for p in refused.value.problems), refused.value


def test_a_blue_green_promotion_switches_all_traffic_to_the_canary_but_an_ab_test_does_not():
    now = datetime(2030, 1, 1, tzinfo=UTC)

    def promoted(analysis: dict[str, Any], state: str) -> int:
        step = step_for(make_spec("podinfo", **analysis), "test", state, canary_weight=7)
        ctx = Ctx(spec=step.spec, data=step.data, state=state, now=now, event=None)
        return effects.start_promotion(ctx).canary_weight

    assert promoted(BLUE_GREEN, "Analysing") == 100
    assert promoted({**BLUE_GREEN, "mirror": True}, "AwaitingPromotion") == 100
    assert promoted(BLUE_GREEN, "Failed") == 7  # the canary may be down: traffic stays put
    assert promoted(A_B, "Analysing") == 7
    assert promoted({}, "Analysing") == 7
