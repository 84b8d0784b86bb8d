"""Record the autoroute history replayed by ``test_autoroute_replay.py``.

Run ``python -m tests.autoroute.record_history`` ONLY when a change to
``workflows/autoroute.py`` is meant to change what the workflow does, and say so in the
commit: a route stays ``Routed`` for as long as its Service lives, and every running one must
replay on the next worker version.

The stand-in workers below return what the real ones would (the real ones run against the
cluster in ``test_autoroute_e2e.py``): no conflict, the VirtualService written, a first check
without traffic, then traffic; a hand edit restored; the Service withdrawn, the route removed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from models.autoroute import (
    AutorouteData,
    AutorouteSpec,
    DriftChecked,
    RouteApplied,
    RoutePlanned,
    RouteRemoved,
    RouteVerified,
)
from models.operator import (
    EVENT_SIGNAL,
    EventEnvelope,
    OperatorInput,
    OperatorStatus,
    StepInput,
    Target,
)
from tests.operators.support import command, send, wait_for
from tests.replay import record_history
from workflows.autoroute import AutorouteWorkflow

HISTORY = Path(__file__).parent / "histories" / "autoroute_routed_removed.json"
WORKFLOW_ID = "autoroute/shop/cart"
Step = StepInput[AutorouteSpec, AutorouteData]
_CHECKS: list[str] = []


@activity.defn(name="autoroute.plan_route")
async def plan_route(step: Step) -> RoutePlanned:
    return RoutePlanned(virtual_service="shop/cart-route")


@activity.defn(name="autoroute.apply_route")
async def apply_route(step: Step) -> RouteApplied:
    return RouteApplied(outcome="applied")


@activity.defn(name="autoroute.verify_route")
async def verify_route(step: Step) -> RouteVerified:
    _CHECKS.append(step.step_key)
    if len(_CHECKS) == 1:
        return RouteVerified(ok=False, detail="no ready backends")
    return RouteVerified(ok=True, backends=1, requests=10.0, detail="10 requests/s")


@activity.defn(name="autoroute.check_drift")
async def check_drift(step: Step) -> DriftChecked:
    return DriftChecked(diff="-  - /cart\n+  - /carts", restored=True)


@activity.defn(name="autoroute.remove_route")
async def remove_route(step: Step) -> RouteRemoved:
    return RouteRemoved(outcome="deleted")


ACTIVITIES = [plan_route, apply_route, verify_route, check_drift, remove_route]


async def _route_and_remove(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    request = {"request": {"host": "shop.example.com", "path": "/cart", "approval": True}}
    first = EventEnvelope(id="k8s:cart:1", type="RouteRequested", payload=request, source="test")
    handle: WorkflowHandle[Any, OperatorStatus] = await client.start_workflow(
        "autoroute",
        OperatorInput(target=Target(namespace="shop", name="cart", kind="Service"), spec={}),
        id=WORKFLOW_ID,
        task_queue=task_queue,
        result_type=OperatorStatus,
        start_signal=EVENT_SIGNAL,
        start_signal_args=[first],
    )
    await wait_for(handle, "AwaitingApproval")
    await send(handle, "RouteRequested", "k8s:cart:2", **request)  # the same request again
    await command(handle, "approve", by="alice")
    await wait_for(handle, "Routed", attempts=400)
    await send(handle, "RouteEdited", "k8s:vs:1", resource_version="9")
    await wait_for(handle, "Routed")
    await send(handle, "RouteWithdrawn", "k8s:cart:gone", reason="the Service was deleted")
    result: OperatorStatus = await handle.result()
    assert result.state == "Removed", result.state
    return handle


async def record() -> None:
    await record_history(HISTORY, [AutorouteWorkflow], ACTIVITIES, _route_and_remove)


if __name__ == "__main__":
    asyncio.run(record())
