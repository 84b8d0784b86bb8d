"""The autoroute machine on the time-skipping server, with scripted workers.

What is checked is the engine running the autoroute definition: which worker runs on
entering a state, which transition follows its answer, what the commands do, and (with the
server's clock jumping) that a route never verified fails at its deadline. Events arrive as
the Kubernetes watcher delivers them: the operator's own sense maps a Service change, and
the watcher's delivery signals (or starts) the workflow. The workers are stand-ins
(``tests.autoroute.scripted_activities``); the end-to-end tests run the real ones.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.autoroute import DRIFT, OPERATOR, ROUTE
from models.operator import EventEnvelope, OperatorStatus
from models.senses import KubeChange, WatchKind
from tests.autoroute.scripted_activities import (
    HAND_EDIT,
    OTHER_ROUTE,
    SCRIPTED_ACTIVITIES,
    TAKEN,
    UNREACHABLE,
    calls_for,
)
from tests.engine.helpers import command, status, wait_for
from tests.operators.support import stop
from watchers.delivery import Delivery, DeliveryRequest, Outcome
from watchers.senses.kinds import SOURCE, event_id
from worker_main import make_worker
from workflows.autoroute import AutorouteWorkflow, autoroute

pytestmark = pytest.mark.temporal

NAMESPACE = "shop"
CLAIM = "shop.example.com/cart"
#: Every worker a Service checked in meets on its way to Routed, in order.
TO_ROUTED = ["plan_route", "apply_route", "verify_route"]


class Routes:
    """Services appearing, changing and going as the Kubernetes watcher reports them."""

    def __init__(self, worker: Worker) -> None:
        self.client = worker.client
        self.delivery = Delivery(worker.client, task_queue=worker.task_queue)
        self.handles: list[WorkflowHandle[Any, OperatorStatus]] = []

    async def _deliver(
        self, plural: str, change: KubeChange, spec: dict[str, Any] | None = None
    ) -> None:
        """Map ``change`` with the operator's sense of ``plural`` and deliver it as the
        watcher does (its own event ID when the map gives none; ``spec`` replaces ``{}``)."""
        sense = next(s for s in autoroute.senses if isinstance(s, WatchKind) and s.plural == plural)
        requests = []
        for emit in sense.map(change):
            envelope = EventEnvelope(
                id=emit.id or event_id(sense, change),
                type=emit.event.type_name(),
                payload=emit.event.model_dump(mode="json"),
                source=f"{SOURCE}/{sense.resource}",
            )
            start = None if emit.start is None else (spec or dict(emit.start))
            requests.append(DeliveryRequest(OPERATOR, emit.target, envelope, start))
        results = await self.delivery.deliver_many(requests)
        assert all(r.outcome is Outcome.DELIVERED for r in results), [r.as_dict() for r in results]

    def handle(self, name: str) -> WorkflowHandle[Any, OperatorStatus]:
        found = self.client.get_workflow_handle(
            f"{OPERATOR}/{NAMESPACE}/{name}", result_type=OperatorStatus
        )
        self.handles.append(found)
        return found

    async def service(
        self,
        name: str,
        kind: str = "added",
        spec: dict[str, Any] | None = None,
        **annotations: str,
    ) -> WorkflowHandle[Any, OperatorStatus]:
        """The Service ``shop/<name>`` as the watcher sees it change; its workflow."""
        meta = {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"}
        body = {"kind": "Service", "metadata": {**meta, "annotations": annotations}}
        await self._deliver("services", KubeChange(kind, body), spec)  # type: ignore[arg-type]
        return self.handle(name)

    async def hand_edit(self, name: str, version: str) -> None:
        """Someone edits the generated VirtualService (the drift sense)."""
        meta = {
            "name": f"{name}-route",
            "namespace": NAMESPACE,
            "uid": f"vs-{name}",
            "resourceVersion": version,
            "annotations": {"autopilot.dev/workflow": f"autoroute/{NAMESPACE}/{name}"},
        }
        change = KubeChange("modified", {"kind": "VirtualService", "metadata": meta})
        await self._deliver("virtualservices", change)


def service(prefix: str = "cart") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def states(current: OperatorStatus) -> list[str]:
    """The states passed, in order (transitions within a state left out)."""
    moves = [t for t in current.transitions if t.source != t.target]
    return [moves[0].source, *(t.target for t in moves)] if moves else [current.state]


@pytest.fixture
async def routes(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Routes]:
    """Routes on the test's own time-skipping server; what a test leaves running is ended."""
    task_queue = f"autoroute-{uuid.uuid4().hex[:6]}"
    async with make_worker(
        time_skipping_env.client, task_queue, [AutorouteWorkflow], SCRIPTED_ACTIVITIES
    ) as worker:
        made = Routes(worker)
        yield made
        for handle in made.handles:
            await stop(handle)


async def test_a_new_annotated_service_is_planned_written_verified_and_routed(routes):
    name = service()
    handle = await routes.service(name, **{ROUTE: CLAIM})

    routed = await wait_for(handle, "Routed")

    assert states(routed) == ["Requested", "Planned", "Applying", "Verifying", "Routed"]
    assert calls_for(name) == TO_ROUTED
    assert routed.data["verified"] is True
    assert routed.data["virtual_service"] == f"{NAMESPACE}/{name}-route"
    assert "route: **shop.example.com** path **/cart**" in routed.details


async def test_a_route_another_claims_ends_in_conflict_naming_both_and_writes_nothing(routes):
    name = service(TAKEN)
    handle = await routes.service(name, **{ROUTE: CLAIM})

    conflict = await wait_for(handle, "Conflict")

    assert calls_for(name) == ["plan_route"]  # nothing written
    assert f"VirtualService {OTHER_ROUTE}" in conflict.data["conflict"]
    assert f"Service {NAMESPACE}/{name} is not routed" in conflict.data["conflict"]
    assert f"conflict: {CLAIM} is already routed by" in conflict.details
    assert conflict.settled and conflict.outcome != "running"
    assert "retry" in conflict.accepted_commands


async def test_a_route_that_asks_for_approval_waits_until_it_is_approved(routes):
    name = service()
    handle = await routes.service(
        name, **{ROUTE: CLAIM, "autopilot.dev/route-approval": "required"}
    )

    waiting = await wait_for(handle, "AwaitingApproval")
    assert calls_for(name) == ["plan_route"]
    assert "approve" in waiting.accepted_commands
    receipt = await command(handle, "approve", by="alice")
    routed = await wait_for(handle, "Routed")

    assert (receipt.state, receipt.applied) == ("AwaitingApproval", True)
    assert calls_for(name) == TO_ROUTED
    assert states(routed)[-4:] == ["AwaitingApproval", "Applying", "Verifying", "Routed"]
    assert routed.data["approved_by"] == "alice"


async def test_a_route_traffic_never_reaches_fails_at_its_deadline_with_the_reason(
    routes, time_skipping_env
):
    name = service(UNREACHABLE)
    handle = await routes.service(name, spec={"verifyWithin": "30s"}, **{ROUTE: CLAIM})
    await wait_for(handle, "Verifying")

    await time_skipping_env.sleep(timedelta(seconds=31))
    failed = await wait_for(handle, "Failed")

    assert failed.data["failure"] == (
        "not verified within 30s: no requests reached the Service yet"
    )
    checks = calls_for(name).count("verify_route")
    assert 2 <= checks <= 8  # one every 5 s of the server's clock, up to the deadline
    assert failed.data["verified"] is False
    assert "retry" in failed.accepted_commands


async def test_a_routed_service_deleted_has_its_route_removed_and_ends(routes):
    name = service()
    handle = await routes.service(name, **{ROUTE: CLAIM})
    await wait_for(handle, "Routed")

    await routes.service(name, "deleted", **{ROUTE: CLAIM})
    removed = await handle.result()

    assert removed.state == "Removed" and removed.final
    assert calls_for(name) == [*TO_ROUTED, "remove_route"]
    assert removed.data["removal"] == "the Service was deleted"
    assert states(removed)[-3:] == ["Routed", "Removing", "Removed"]


async def test_an_annotation_removed_from_a_routed_service_removes_its_route(routes):
    name = service()
    handle = await routes.service(name, **{ROUTE: CLAIM})
    await wait_for(handle, "Routed")

    await routes.service(name, "modified")
    removed = await handle.result()

    assert removed.state == "Removed"
    assert calls_for(name)[-1] == "remove_route"
    assert removed.data["removal"] == f"the Service no longer has the annotation {ROUTE}"


async def test_a_hand_edit_of_the_route_is_put_back_under_the_restore_policy(routes):
    name = service()
    handle = await routes.service(name, **{ROUTE: CLAIM})
    await wait_for(handle, "Routed")

    await routes.hand_edit(name, "101")
    restored = await _drift_checked(handle)

    assert calls_for(name) == [*TO_ROUTED, "check_drift"]
    assert restored.state == "Routed"
    assert restored.data["drift"] == HAND_EDIT and restored.data["drift_restored"] == 1
    assert restored.data["notes"][-1] == "a hand edit of the VirtualService was put back"
    assert states(restored)[-2:] == ["CheckingDrift", "Routed"]


async def test_a_hand_edit_of_the_route_is_only_reported_under_the_report_policy(routes):
    name = service()
    handle = await routes.service(name, **{ROUTE: CLAIM, DRIFT: "report"})
    await wait_for(handle, "Routed")

    await routes.hand_edit(name, "102")
    reported = await _drift_checked(handle)

    assert reported.state == "Routed"
    assert reported.data["drift"] == HAND_EDIT and reported.data["drift_restored"] == 0
    assert reported.data["notes"][-1] == "a hand edit of the VirtualService is reported"
    assert f"drift:\n```diff\n{HAND_EDIT}\n```" in reported.details


async def test_abort_stops_a_route_waiting_for_traffic_and_undoes_nothing(routes):
    name = service(UNREACHABLE)
    handle = await routes.service(name, **{ROUTE: CLAIM})
    await wait_for(handle, "Verifying")

    receipt = await command(handle, "abort", by="bob", reason="wrong host")
    aborted = await handle.result()

    assert (receipt.state, receipt.now) == ("Verifying", "Aborted")
    assert aborted.state == "Aborted" and aborted.final
    assert "remove_route" not in calls_for(name)
    assert aborted.data["notes"][-1] == "aborted by bob: wrong host"


async def _drift_checked(handle: WorkflowHandle[Any, OperatorStatus]) -> OperatorStatus:
    """Routed again after the drift check (the check itself may be over before a look)."""
    for _ in range(200):
        current = await status(handle)
        if current.state == "Routed" and current.data["drift"]:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never checked the drift: {current.data}")
