"""Stand-ins for the autoroute workers, registered under the real activity names.

Machine tests check what the engine does with the autoroute definition (which worker runs
when, which transition follows), not what the workers do to a cluster: the end-to-end tests
run the real ones. These record each call and return the event the real worker would; the
Service's name picks the script, as a cluster would:

- ``taken-*``: another VirtualService already claims the host and path (``Conflict``);
- ``unreachable-*``: the route is written but traffic never reaches the Service;
- any other name: no conflict, written, verified at the first check.

A hand edit (``check_drift``) is found on every Service; it is put back when the route's
drift policy is ``restore``, as the real worker does in direct mode.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import non_retryable
from models.autoroute import (
    OPERATOR,
    AutorouteData,
    AutorouteSpec,
    DriftChecked,
    ManifestRead,
    RouteApplied,
    RoutePlanned,
    RouteRemoved,
    RouteVerified,
    route_name,
)
from models.gitops_modes import PullRequestPolled
from models.operator import StepInput

Step = StepInput[AutorouteSpec, AutorouteData]

#: Services whose host and path another route already claims.
TAKEN = "taken"
#: Services whose route never carries traffic.
UNREACHABLE = "unreachable"
#: Who already routes the host and path of a ``taken-*`` Service.
OTHER_ROUTE = "shop/cart-route"
#: The diff every drift check finds.
HAND_EDIT = "--- generated\n+++ live\n-  prefix: /cart\n+  prefix: /basket"

#: (activity, Service name, state) of every call, in order.
CALLS: list[tuple[str, str, str]] = []


def _called(name: str, step: Step) -> None:
    CALLS.append((name, step.target.name, step.state))


def calls_for(service: str) -> list[str]:
    """The activities run for one Service, in order."""
    return [name for name, called_for, _ in CALLS if called_for == service]


def _where(step: Step) -> str:
    return f"{step.target.namespace}/{route_name(step.target.name)}"


@activity.defn(name=f"{OPERATOR}.read_manifest")
async def read_manifest(step: Step) -> ManifestRead:
    _called("read_manifest", step)
    raise non_retryable("the machine tests push nothing to git")


@activity.defn(name=f"{OPERATOR}.plan_route")
async def plan_route(step: Step) -> RoutePlanned:
    _called("plan_route", step)
    if not step.target.name.startswith(TAKEN):
        return RoutePlanned(virtual_service=_where(step))
    assert step.data.request is not None
    service = f"{step.target.namespace}/{step.target.name}"
    return RoutePlanned(
        virtual_service=_where(step),
        conflict=(
            f"{step.data.request.claim} is already routed by VirtualService {OTHER_ROUTE} "
            f"(to Service cart.shop); Service {service} is not routed"
        ),
    )


@activity.defn(name=f"{OPERATOR}.apply_route")
async def apply_route(step: Step) -> RouteApplied:
    _called("apply_route", step)
    return RouteApplied(outcome="applied")


@activity.defn(name=f"{OPERATOR}.poll_pull_request")
async def poll_pull_request(step: Step) -> PullRequestPolled:
    _called("poll_pull_request", step)
    raise non_retryable("the machine tests open no pull request")


@activity.defn(name=f"{OPERATOR}.verify_route")
async def verify_route(step: Step) -> RouteVerified:
    _called("verify_route", step)
    if step.target.name.startswith(UNREACHABLE):
        return RouteVerified(ok=False, backends=1, detail="no requests reached the Service yet")
    return RouteVerified(ok=True, backends=1, requests=10.0, detail="10 requests/s reach it")


@activity.defn(name=f"{OPERATOR}.check_drift")
async def check_drift(step: Step) -> DriftChecked:
    _called("check_drift", step)
    assert step.data.request is not None
    return DriftChecked(diff=HAND_EDIT, restored=step.data.request.drift == "restore")


@activity.defn(name=f"{OPERATOR}.remove_route")
async def remove_route(step: Step) -> RouteRemoved:
    _called("remove_route", step)
    return RouteRemoved(outcome="deleted")


SCRIPTED_ACTIVITIES = [
    read_manifest,
    plan_route,
    apply_route,
    poll_pull_request,
    verify_route,
    check_drift,
    remove_route,
]
