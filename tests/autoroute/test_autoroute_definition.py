"""The autoroute operator's pure parts: the annotations, the senses' maps, conflicts, drift.

No server: these are the functions the machine, the watchers and the workers share.
"""

from __future__ import annotations

from typing import Any

import pytest

from activities.autoroute import claimed_by, drift_diff, wanted_route
from models.autoroute import (
    ANNOTATIONS,
    AutorouteData,
    AutorouteSpec,
    RouteRequest,
    RouteRequested,
    RouteRequestError,
    RouteWithdrawn,
    parse_route,
)
from models.operator import StepInput, Target
from models.senses import KubeChange
from workflows.autoroute import autoroute, route_changed, service_changed

ROUTE = "autopilot.dev/route"


def _service(kind: str = "added", **annotations: str) -> KubeChange:
    meta = {"name": "cart", "namespace": "shop", "uid": "u-1", "annotations": annotations}
    return KubeChange(kind, {"metadata": meta})  # type: ignore[arg-type]


def _vs(hosts: list[str], match: list[dict[str, Any]] | None) -> dict[str, Any]:
    route: dict[str, Any] = {"route": [{"destination": {"host": "other"}}]}
    if match is not None:
        route["match"] = match
    return {
        "metadata": {"name": "other", "namespace": "shop"},
        "spec": {"hosts": hosts, "http": [route]},
    }


def test_the_route_annotation_reads_host_path_and_every_option() -> None:
    request = parse_route(
        {
            ROUTE: "Shop.Example.com/cart",
            "autopilot.dev/route-gateway": "istio-system/public",
            "autopilot.dev/route-port": "8080",
            "autopilot.dev/route-timeout": "5s",
            "autopilot.dev/route-retries": "3",
            "autopilot.dev/route-approval": "required",
            "autopilot.dev/route-mode": "pull-request",
            "autopilot.dev/route-drift": "report",
        }
    )
    assert request == RouteRequest(
        host="shop.example.com", path="/cart", gateway="istio-system/public", port=8080,
        timeout="5s", retries=3, approval=True, mode="pull-request", drift="report",
    )  # fmt: skip
    assert parse_route({ROUTE: "shop.example.com"}) == RouteRequest(host="shop.example.com")
    assert parse_route({"other": "x"}) is None


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({ROUTE: "shop.example.com/cart", "autopilot.dev/route-retries": "many"}, "route-retries"),
        ({ROUTE: "shop.example.com/cart", "autopilot.dev/route-retries": "11"}, "route-retries"),
        ({ROUTE: "shop.example.com/cart", "autopilot.dev/route-timeout": "soon"}, "route-timeout"),
        ({ROUTE: "shop example/cart"}, "autopilot.dev/route:"),
        ({ROUTE: "shop.example.com/cart", "autopilot.dev/route-mode": "yolo"}, "route-mode"),
    ],
)
def test_an_unreadable_annotation_is_refused_naming_it(
    annotations: dict[str, str], named: str
) -> None:
    with pytest.raises(RouteRequestError, match=named):
        parse_route(annotations)


def test_an_annotated_service_starts_its_route_and_a_repeat_has_the_same_event_id() -> None:
    first = service_changed(_service(**{ROUTE: "shop.example.com/cart", "team": "x"}))
    again = service_changed(_service("modified", **{ROUTE: "shop.example.com/cart"}))
    assert len(first) == 1 and first[0].start == {}
    assert isinstance(first[0].event, RouteRequested)
    assert first[0].event.request == RouteRequest(host="shop.example.com", path="/cart")
    assert first[0].id == again[0].id
    assert first[0].target.workflow_id("autoroute") == "autoroute/shop/cart"


def test_a_service_losing_its_annotation_or_deleted_withdraws_the_route_and_starts_nothing() -> (
    None
):
    assert service_changed(_service()) == []  # never asked: nothing
    lost = service_changed(_service("modified"))
    gone = service_changed(_service("deleted", **{ROUTE: "shop.example.com/cart"}))
    assert [type(e.event) for e in lost + gone] == [RouteWithdrawn, RouteWithdrawn]
    assert all(e.start is None for e in lost + gone)


def test_only_a_change_of_a_route_this_operator_wrote_is_drift() -> None:
    ours = {"name": "cart-route", "namespace": "shop", "uid": "v", "resourceVersion": "7"}
    ours["annotations"] = {"autopilot.dev/workflow": "autoroute/shop/cart"}  # type: ignore[assignment]
    foreign = {**ours, "annotations": {"autopilot.dev/workflow": "canary/shop/cart"}}
    assert route_changed(KubeChange("modified", {"metadata": ours}))[0].target.name == "cart"
    assert route_changed(KubeChange("modified", {"metadata": foreign})) == []


@pytest.mark.parametrize(
    ("hosts", "match", "claimed"),
    [
        (["shop.example.com"], [{"uri": {"prefix": "/cart"}}], True),
        (["shop.example.com"], [{"uri": {"prefix": "/cart/"}}], True),
        (["shop.example.com"], [{"uri": {"exact": "/cart"}}], True),
        (["*.example.com"], [{"uri": {"prefix": "/cart"}}], True),
        (["shop.example.com"], [{"uri": {"prefix": "/carts"}}], False),
        (["other.example.com"], [{"uri": {"prefix": "/cart"}}], False),
        (["shop.example.com"], None, False),  # a catch-all claims /, not /cart
    ],
)
def test_a_route_claims_the_host_and_path_when_it_sends_that_prefix(
    hosts: list[str], match: list[dict[str, Any]] | None, claimed: bool
) -> None:
    assert claimed_by(_vs(hosts, match), "shop.example.com", "/cart") is claimed


def _step(request: RouteRequest) -> StepInput[AutorouteSpec, AutorouteData]:
    return StepInput[AutorouteSpec, AutorouteData](
        workflow_id="autoroute/shop/cart",
        target=Target(namespace="shop", name="cart", kind="Service"),
        state="Applying",
        step_key="k",
        spec=AutorouteSpec(),
        data=AutorouteData(request=request),
    )


def test_the_generated_route_and_a_hand_edit_shown_as_a_diff() -> None:
    step = _step(RouteRequest(host="shop.example.com", path="/cart", port=8080, retries=2))
    wanted = wanted_route(step)
    http = wanted["spec"]["http"][0]
    assert wanted["metadata"]["name"] == "cart-route"
    assert http["route"][0]["destination"] == {
        "host": "cart.shop.svc.cluster.local",
        "port": {"number": 8080},
    }
    assert http["retries"] == {"attempts": 2}
    edited = {**wanted, "spec": {**wanted["spec"], "hosts": ["evil.example.com"]}}
    diff = drift_diff(edited, wanted)
    assert "-- shop.example.com" in diff and "+- evil.example.com" in diff


def test_the_machine_is_valid_and_every_annotation_is_documented() -> None:
    autoroute.check()
    with open("docs/operators/autoroute.md") as page:
        text = page.read()
    for key in ANNOTATIONS:
        assert f"`{key}`" in text
