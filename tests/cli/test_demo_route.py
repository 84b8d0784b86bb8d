"""The demo's last act, piece by piece: the new Service's manifest, following its route, the
lines it prints, and a cleanup that passes over a workflow that never started."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from temporalio.client import WorkflowExecutionStatus

from cli.demo import DEMO_OBJECTS
from cli.demo_rollout import terminate_open
from cli.demo_route import (
    ROUTE_MANIFEST,
    RouteOutcome,
    is_earlier,
    is_settled,
    outcome_of,
    requested_route,
    route_commands,
    route_manifest,
    routes_command,
    states_passed,
)
from cli.demo_view import RouteView, route_verdict, route_verification, summary
from models.autoroute import ROUTE
from models.operator import OperatorStatus, Target, TransitionRecord
from tests.engine.helpers import wait_for

T0 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


def _move(source: str, target: str, event: str, second: int) -> TransitionRecord:
    return TransitionRecord(
        at=T0 + timedelta(seconds=second), source=source, target=target, event=event,
        event_id=f"{event}-{second}",
    )  # fmt: skip


PLANNED = _move("Requested", "Planned", "RouteRequested", 1)
APPLYING = _move("Planned", "Applying", "RoutePlanned", 2)
VERIFYING = _move("Applying", "Verifying", "RouteApplied", 3)
CHECKED = _move("Verifying", "Verifying", "Timeout", 8)
ROUTED = _move("Verifying", "Routed", "RouteVerified", 9)


def _status(
    state: str, moves: list[TransitionRecord], settled: bool = False, **data: Any
) -> OperatorStatus:
    return OperatorStatus(
        workflow_id="autoroute/demo/cart",
        operator="autoroute",
        target=Target(namespace="demo", name="cart", kind="Service"),
        state=state,
        final=state in ("Removed", "Aborted"),
        settled=settled or state in ("Requested", "Routed", "Conflict", "Failed"),
        outcome="running",
        paused=False,
        since=T0 + timedelta(seconds=len(moves)),
        transitions=moves,
        data=data,
    )


# --------------------------------------------------------------- the new Service


def test_the_checked_in_service_asks_for_shop_example_com_cart_and_has_its_backend():
    assert requested_route(ROUTE_MANIFEST).claim == "shop.example.com/cart"
    documents = list(yaml.safe_load_all(ROUTE_MANIFEST.read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    service = next(d for d in documents if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert all("namespace" not in d["metadata"] for d in documents)  # kubectl -n says it


def test_in_the_demo_namespace_the_manifest_is_applied_as_it_is(tmp_path: Path):
    assert route_manifest("demo", tmp_path) == ROUTE_MANIFEST
    assert route_commands("demo", ROUTE_MANIFEST) == [
        ["apply", "-n", "demo", "-f", "demo/cart.yaml"]
    ]
    assert routes_command("demo") == ["get", "virtualservice", "-n", "demo"]


def test_in_another_namespace_the_host_is_its_own_so_a_kept_run_does_not_conflict(
    tmp_path: Path,
):
    copy = route_manifest("demo-2", tmp_path)

    assert copy.parent == tmp_path
    assert requested_route(copy).claim == "demo-2.shop.example.com/cart"
    documents = list(yaml.safe_load_all(copy.read_text()))
    assert [d["kind"] for d in documents] == ["Deployment", "Service"]
    assert documents[1]["metadata"]["annotations"][ROUTE] == "demo-2.shop.example.com/cart"
    assert route_commands("demo-2", copy)[0][-1] == str(copy)


def test_cleanup_deletes_the_new_service_its_backend_and_its_route_too():
    assert {
        ("services", "cart"),
        ("deployments", "cart"),
        ("virtualservices", "cart-route"),
    } <= set(DEMO_OBJECTS)
    assert ("deployments", "podinfo") in DEMO_OBJECTS


# --------------------------------------------------------------- following the route


def test_the_states_passed_leave_out_the_checks_within_a_state():
    routed = _status("Routed", [PLANNED, APPLYING, VERIFYING, CHECKED, ROUTED])
    assert states_passed(routed) == ["Requested", "Planned", "Applying", "Verifying", "Routed"]
    assert states_passed(_status("Requested", [])) == ["Requested"]


def test_the_route_is_followed_until_routed_conflict_or_a_human_is_needed():
    assert not is_settled(_status("Requested", []))
    assert not is_settled(_status("Verifying", [PLANNED, APPLYING, VERIFYING]))
    assert is_settled(_status("Routed", [PLANNED, APPLYING, VERIFYING, ROUTED]))
    assert is_settled(_status("Conflict", [PLANNED]))
    assert is_settled(_status("AwaitingApproval", [PLANNED], settled=True))


def test_an_earlier_demos_removed_route_is_not_this_ones():
    removed = _status("Removed", [PLANNED])
    assert is_earlier(removed, T0 + timedelta(minutes=5))
    assert not is_earlier(removed, T0 - timedelta(minutes=5))
    assert not is_earlier(_status("Routed", [PLANNED]), T0 + timedelta(minutes=5))


def test_a_conflict_is_not_as_expected_and_says_who_claims_the_route():
    conflict = _status(
        "Conflict", [PLANNED, _move("Planned", "Conflict", "RoutePlanned", 2)],
        conflict="shop.example.com/cart is already routed by VirtualService shop/cart-route",
    )  # fmt: skip
    outcome = outcome_of(conflict, "shop.example.com/cart", 2.4)

    assert not outcome.as_expected
    assert outcome.states == ["Requested", "Planned", "Conflict"]
    verdict = route_verdict(outcome).plain
    assert verdict.startswith("  ✗ cart Conflict in 2s: Requested → Planned → Conflict")
    assert "expected Routed: shop.example.com/cart is already routed by" in verdict


# --------------------------------------------------------------- what it prints


def test_each_state_change_is_told_once_with_what_the_machine_noted():
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    view = RouteView(console)
    asked = ["the Service in the cluster asks for shop.example.com/cart"]
    written = [*asked, "VirtualService demo/cart-route written"]
    verified = [*written, "verified: 1 ready backend(s); 10 requests/s reach it"]

    view.update(_status("Planned", [PLANNED], notes=asked), 0.5)
    view.update(_status("Planned", [PLANNED], notes=asked), 1.0)  # nothing new
    view.update(
        _status(
            "Verifying", [PLANNED, APPLYING, VERIFYING], notes=written,
            verification="no ready backends: no Deployment selected by Service demo/cart is ready",
        ),
        1.5,
    )  # fmt: skip
    view.update(
        _status(
            "Routed", [PLANNED, APPLYING, VERIFYING, CHECKED, ROUTED], notes=verified,
            verified=True, verification="1 ready backend(s); 10 requests/s reach it",
        ),
        6.5,
    )  # fmt: skip

    assert console.export_text().splitlines() == [
        "    0.5s  Requested → Planned  the Service in the cluster asks for shop.example.com/cart",
        "    1.5s  Planned → Applying",
        "    1.5s  Applying → Verifying  VirtualService demo/cart-route written",
        "    1.5s  check: no ready backends: no Deployment selected by Service demo/cart is ready",
        "    6.5s  Verifying → Routed  verified: 1 ready backend(s); 10 requests/s reach it",
    ]


def test_moves_seen_in_one_look_are_told_in_order_with_the_notes_that_came_before():
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    notes = ["the Service in the cluster asks for shop.example.com/cart", "written"]

    RouteView(console).update(
        _status("Verifying", [PLANNED, APPLYING, VERIFYING], notes=notes), 0.5
    )

    assert console.export_text().splitlines() == [
        "    0.5s  the Service in the cluster asks for shop.example.com/cart",
        "    0.5s  Requested → Planned",
        "    0.5s  Planned → Applying",
        "    0.5s  Applying → Verifying  written",
    ]


def test_the_verdict_names_the_states_passed_and_the_check_by_traffic():
    outcome = RouteOutcome(
        claim="shop.example.com/cart",
        state="Routed",
        states=["Requested", "Planned", "Applying", "Verifying", "Routed"],
        seconds=6.4,
        virtual_service="demo/cart-route",
        verification="1 ready backend(s); 9.8 requests/s through shop.example.com/cart reach it",
    )

    assert route_verdict(outcome).plain == (
        "  ✓ cart Routed in 6s: Requested → Planned → Applying → Verifying → Routed"
    )
    assert route_verification(outcome).plain == (
        "  verified by traffic (simulated, through the gateway): 1 ready backend(s); "
        "9.8 requests/s through shop.example.com/cart reach it"
    )
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    console.print(summary([], outcome, plain=True))
    row = next(line for line in console.export_text().splitlines() if line.startswith(" cart"))
    assert row.split() == [
        "cart", "new", "Service,", "route", "shop.example.com/cart", "Routed", "Routed", "6s",
    ]  # fmt: skip


# --------------------------------------------------------------- cleaning up


@pytest.mark.temporal
async def test_cleanup_passes_over_a_workflow_that_never_started_and_ends_the_others(tickets):
    running = await tickets.start()
    await wait_for(running, "Open")
    never = f"autoroute/{tickets.namespace}/never-{uuid.uuid4().hex[:6]}"
    address = tickets.client.service_client.config.target_host

    ended = await terminate_open(address, {never, running.id})

    assert ended == [running.id]
    assert (await running.describe()).status == WorkflowExecutionStatus.TERMINATED
