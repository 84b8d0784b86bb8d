"""The autoroute operator: a Service checked in to git, or seen in the cluster, gets a route.

One durable workflow per Service (ID ``autoroute/<namespace>/<name>``), started by whichever
trigger comes first: a push to the application repository's default branch that adds or
changes ``services/<namespace>/<name>.yaml`` (the GitHub webhook), or the Service appearing
in the cluster with the annotation ``autopilot.dev/route: host/path``. The other trigger for
the same Service and request finds the workflow running and the same request: it moves
nothing, so both give one route and one pull request::

    Requested ─push─▶ Reading ─manifest─┐
        │ Service in the cluster         ▼
        └──────────────────────────▶ Planned ─another route claims host+path─▶ Conflict
                                        │ approval: required ─▶ AwaitingApproval ─/approve─┐
                                        ▼                                                   ▼
                                     Applying ─pull-request mode─▶ InReview ─merged─▶ Verifying
                                        └──────────── direct ───────────────────────────▶ │
                                                       ready backends and traffic ◀────────┘
                                                                   ▼
                                           Routed ─hand edit─▶ CheckingDrift (restore | report)

The Service deleted, its annotation removed, or its file removed in git: ``Removing`` deletes
the VirtualService (or a pull request removes its file) and the workflow ends ``Removed``.
Verification past ``verifyWithin`` ends in ``Failed`` with the reason; ``retry`` plans again.

Guards and effects are pure; the workers are in ``activities/autoroute.py``, named here.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
import hashlib
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

from models.autoroute import (
    OPERATOR,
    ROUTE,
    AutorouteData,
    AutorouteSpec,
    DriftChecked,
    ManifestRead,
    RouteApplied,
    RouteEdited,
    RoutePlanned,
    RouteRemoved,
    RouteRequest,
    RouteRequested,
    RouteRequestError,
    RouteVerified,
    RouteWithdrawn,
    ServiceCheckedIn,
    ServiceCheckedOut,
    parse_route,
)
from models.durations import format_duration
from models.errors import NON_RETRYABLE
from models.gitops_modes import PullRequestClosed, PullRequestMerged, PullRequestPolled
from models.operator import CommandRequest, OperatorInput, OperatorStatus, Target
from models.senses import Dedicated, Emit, KubeChange, WatchKind
from workflows.engine import (
    ANY,
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    Operator,
    OperatorWorkflow,
    Timeout,
)
from workflows.engine.versioning import auto_upgrade
from workflows.registry import register

A = Ctx[AutorouteSpec, AutorouteData]
E = TypeVar("E")
On = Ctx[AutorouteSpec, AutorouteData, E]

#: How often Verifying checks backends and traffic again.
VERIFY_EVERY = timedelta(seconds=5)

# =============================================================================
# Workers (activities/autoroute.py), by name
# =============================================================================

read_manifest = ActivityRef(
    f"{OPERATOR}.read_manifest",
    returns=ManifestRead,
    timeout=timedelta(seconds=60),
    max_attempts=5,
    summary="read the pushed Service manifest from GitHub",
)
plan_route = ActivityRef(
    f"{OPERATOR}.plan_route",
    returns=RoutePlanned,
    timeout=timedelta(seconds=30),
    max_attempts=5,
    summary="find every route that claims the host and path",
)
apply_route = ActivityRef(
    f"{OPERATOR}.apply_route",
    returns=RouteApplied,
    timeout=timedelta(seconds=120),
    max_attempts=5,
    summary="write the VirtualService, or open its pull request",
)
poll_pull_request = ActivityRef(
    f"{OPERATOR}.poll_pull_request",
    returns=PullRequestPolled,
    timeout=timedelta(seconds=60),
    max_attempts=3,
    summary="read the route's pull request (fallback for lost webhooks)",
)
verify_route = ActivityRef(
    f"{OPERATOR}.verify_route",
    returns=RouteVerified,
    timeout=timedelta(seconds=30),
    max_attempts=3,
    summary="ready backends, and traffic through the route to the Service",
)
check_drift = ActivityRef(
    f"{OPERATOR}.check_drift",
    returns=DriftChecked,
    timeout=timedelta(seconds=30),
    max_attempts=5,
    summary="compare the live VirtualService with the generated one",
)
remove_route = ActivityRef(
    f"{OPERATOR}.remove_route",
    returns=RouteRemoved,
    timeout=timedelta(seconds=120),
    max_attempts=0,
    maximum_retry_interval=timedelta(seconds=30),
    summary="delete the VirtualService, or open the pull request removing it",
)

# =============================================================================
# Senses: pure maps from a Kubernetes change to events
# =============================================================================


def _service_target(change: KubeChange) -> Target:
    return Target(namespace=change.namespace, name=change.name, kind="Service")


def service_changed(change: KubeChange) -> list[Emit]:
    """A Service with a route annotation starts (or tells) its instance; its end stops it.

    Every Service is watched, not only annotated ones, so that an annotation removed is
    seen: a ``modified`` Service without it tells a running instance (never starts one).
    The event ID is the uid and the route annotations, so a Service changed in other ways,
    or listed again, sends nothing new.
    """
    target = _service_target(change)
    annotations = {k: v for k, v in change.annotations.items() if k.startswith(ROUTE)}
    if change.type == "deleted":
        if not annotations:
            return []
        return [Emit(target, RouteWithdrawn(reason="the Service was deleted"))]
    if not annotations.get(ROUTE, "").strip():
        if change.type != "modified":
            return []
        reason = f"the Service no longer has the annotation {ROUTE}"
        return [Emit(target, RouteWithdrawn(reason=reason), id=f"{OPERATOR}:{change.uid}:none")]
    key = ",".join(f"{k}={v}" for k, v in sorted(annotations.items()))
    event_id = f"{OPERATOR}:{change.uid}:{_digest(key)}"
    try:
        request = parse_route(change.annotations)
    except RouteRequestError as error:
        event = RouteRequested(error=str(error)[:2048], service_uid=change.uid)
        return [Emit(target, event, id=event_id, start={})]
    event = RouteRequested(request=request, service_uid=change.uid)
    return [Emit(target, event, id=event_id, start={})]


def _digest(text: str) -> str:
    """A short, stable digest of the route annotations, for the event ID."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def route_changed(change: KubeChange) -> list[Emit]:
    """A VirtualService this operator wrote changed: its instance checks for drift."""
    owner = change.annotations.get("autopilot.dev/workflow", "")
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != OPERATOR or change.type == "added":
        return []
    target = Target(namespace=parts[1], name=parts[2], kind="Service")
    event = RouteEdited(resource_version=change.resource_version)
    return [Emit(target, event, id=f"{OPERATOR}:vs:{change.uid}:{change.resource_version}")]


# =============================================================================
# Guards
# =============================================================================


def _is_new(data: AutorouteData, request: RouteRequest | None) -> bool:
    return request is not None and request != data.request


def requested(ctx: On[RouteRequested]) -> bool:
    """A route request that can be read, and differs from the one in hand."""
    return ctx.event.error is None and _is_new(ctx.data, ctx.event.request)


def unreadable(ctx: On[RouteRequested]) -> bool:
    """The annotations cannot be read."""
    return ctx.event.error is not None


def manifest_asks(ctx: On[ManifestRead]) -> bool:
    """The pushed manifest asks for a route that differs from the one in hand."""
    return _is_new(ctx.data, ctx.event.request)


def manifest_same_routed(ctx: On[ManifestRead]) -> bool:
    """The pushed manifest asks for the route already verified: nothing to do."""
    return ctx.event.request is not None and ctx.data.verified


def manifest_same(ctx: On[ManifestRead]) -> bool:
    """The pushed manifest asks for the route in hand, not yet verified: go on planning."""
    return ctx.event.request is not None


def manifest_withdraws(ctx: On[ManifestRead]) -> bool:
    """The pushed manifest has no route annotation (or is not there), and a route exists."""
    return ctx.event.error is None and ctx.event.request is None and ctx.data.request is not None


def manifest_unreadable(ctx: On[ManifestRead]) -> bool:
    """The manifest cannot be read or its annotations parsed."""
    return ctx.event.error is not None


def in_conflict(ctx: On[RoutePlanned]) -> bool:
    """Another route claims the host and path."""
    return ctx.event.conflict is not None


def needs_approval(ctx: On[RoutePlanned]) -> bool:
    """The request asks for approval, and nobody gave it for this request."""
    request = ctx.data.request
    return request is not None and request.approval and ctx.data.approved_by is None


def apply_conflict(ctx: On[RouteApplied]) -> bool:
    """Between planning and writing, another route claimed the host and path."""
    return ctx.event.outcome == "conflict"


def pull_request_opened(ctx: On[RouteApplied]) -> bool:
    """A pull request brings the route; wait for its review."""
    return ctx.event.outcome in ("opened", "found")


def is_our_pr(ctx: On[PullRequestMerged | PullRequestClosed | PullRequestPolled]) -> bool:
    """The pull request is the one the route waits for."""
    return ctx.data.pr is not None and ctx.event.number == ctx.data.pr


def polled_merged(ctx: On[PullRequestPolled]) -> bool:
    """The poll found our pull request merged."""
    return is_our_pr(ctx) and ctx.event.state == "merged"


def polled_closed(ctx: On[PullRequestPolled]) -> bool:
    """The poll found our pull request closed unmerged."""
    return is_our_pr(ctx) and ctx.event.state == "closed"


def has_request(ctx: On[CommandRequest]) -> bool:
    """There is a readable request to plan again (an unreadable one needs a new annotation)."""
    return ctx.data.request is not None


def verified(ctx: On[RouteVerified]) -> bool:
    """Ready backends, and traffic through the route reached the Service."""
    return ctx.event.ok


def verify_wait(ctx: A) -> timedelta:
    """The next check, or the deadline if it comes first."""
    since = ctx.data.verify_started_at or ctx.now
    left = since + ctx.spec.verify_within - ctx.now
    return max(timedelta(0), min(VERIFY_EVERY, left))


def past_deadline(ctx: On[Timeout]) -> bool:
    """``verifyWithin`` has passed since verification began."""
    since = ctx.data.verify_started_at or ctx.now
    return ctx.now >= since + ctx.spec.verify_within


def poll_interval(ctx: A) -> timedelta:
    """How long InReview waits before reading its pull request again."""
    return timedelta(seconds=ctx.data.poll_interval_s)


def removal_in_review(ctx: On[RouteRemoved]) -> bool:
    """A pull request removes the route's file; wait for it."""
    return ctx.event.outcome in ("opened", "found")


def drifted(ctx: On[DriftChecked]) -> bool:
    """The live VirtualService differs from the generated one."""
    return bool(ctx.event.diff)


def route_gone(ctx: On[DriftChecked]) -> bool:
    """Someone deleted the VirtualService, and the policy is restore: write it again."""
    return ctx.event.gone and ctx.data.request is not None and ctx.data.request.drift == "restore"


# =============================================================================
# Effects
# =============================================================================


def _noted(data: AutorouteData, note: str, **update: object) -> AutorouteData:
    notes = [*data.notes, note[:512]][-AutorouteData.MAX_NOTES :]
    return data.model_copy(update={**update, "notes": notes})


def _fresh(data: AutorouteData, request: RouteRequest, by: str, note: str) -> AutorouteData:
    """A new request: forget what was decided about the previous one."""
    return _noted(
        data,
        note,
        request=request,
        requested_by=by,
        conflict=None,
        approved_by=None,
        pr=None,
        pr_url="",
        pr_state="",
        verified=False,
        verification="",
        failure="",
    )


def record_request(ctx: On[RouteRequested]) -> AutorouteData:
    """The Service in the cluster asks for a route."""
    request = ctx.event.request
    assert request is not None  # the guard
    data = ctx.data.model_copy(update={"service_uid": ctx.event.service_uid})
    return _fresh(data, request, "cluster", f"the Service in the cluster asks for {request.claim}")


def record_same_request(ctx: On[RouteRequested]) -> AutorouteData:
    """The other trigger for the same request: one workflow, one route, one pull request."""
    if ctx.event.error is not None or ctx.event.request is None:
        return ctx.data
    note = f"the Service in the cluster asks for {ctx.event.request.claim} too: nothing new"
    return _noted(ctx.data, note, service_uid=ctx.event.service_uid or ctx.data.service_uid)


def record_unreadable(ctx: On[RouteRequested]) -> AutorouteData:
    """The annotations say nothing the operator can do."""
    failure = f"the route annotations cannot be read: {ctx.event.error}"
    return _noted(ctx.data, failure, failure=failure)


def record_checkin(ctx: On[ServiceCheckedIn]) -> AutorouteData:
    """A push changed the Service's manifest: read it at that commit."""
    event = ctx.event
    commit = event.commit or event.after
    note = f"push {commit[:12]} {event.change or 'changed'} {event.path} in {event.repository}"
    return _noted(
        ctx.data,
        note,
        git_path=event.path,
        git_commit=commit,
        git_repository=event.repository,
    )


def _git_source(data: AutorouteData) -> str:
    return f"git {data.git_repository}@{data.git_commit[:12]} {data.git_path}"


def record_manifest(ctx: On[ManifestRead]) -> AutorouteData:
    """The pushed manifest asks for a route."""
    request = ctx.event.request
    assert request is not None  # the guard
    source = _git_source(ctx.data)
    return _fresh(ctx.data, request, source, f"{source} asks for {request.claim}")


def record_manifest_same(ctx: On[ManifestRead]) -> AutorouteData:
    """The push asks for the route in hand: one route, one pull request."""
    request = ctx.event.request
    claim = request.claim if request else ""
    return _noted(ctx.data, f"{_git_source(ctx.data)} asks for {claim} too: nothing new")


def record_manifest_failure(ctx: On[ManifestRead]) -> AutorouteData:
    """The manifest cannot be read, or its annotations parsed."""
    failure = f"{_git_source(ctx.data)}: {ctx.event.error}"
    return _noted(ctx.data, failure, failure=failure)


def withdraw_in_git(ctx: On[ManifestRead]) -> AutorouteData:
    """The pushed manifest no longer asks for a route."""
    why = "is not in git" if not ctx.event.found else f"no longer has {ROUTE}"
    removal = f"{_git_source(ctx.data)} {why}"
    return _noted(ctx.data, removal, removal=removal)


def no_route_asked(ctx: On[ManifestRead]) -> AutorouteData:
    """A push of a Service that asks for no route: nothing to route."""
    removal = f"{_git_source(ctx.data)} asks for no route (no {ROUTE} annotation)"
    return _noted(ctx.data, removal, removal=removal)


def record_checkout(ctx: On[ServiceCheckedOut]) -> AutorouteData:
    """A push removed the Service's manifest."""
    event = ctx.event
    removal = (
        f"push {(event.commit or event.after)[:12]} removed {event.path} in {event.repository}"
    )
    return _noted(ctx.data, removal, removal=removal)


def record_withdrawal(ctx: On[RouteWithdrawn]) -> AutorouteData:
    """The Service is gone from the cluster, or asks for no route any more."""
    return _noted(ctx.data, ctx.event.reason, removal=ctx.event.reason)


def record_plan(ctx: On[RoutePlanned]) -> AutorouteData:
    """No other route claims the host and path."""
    return ctx.data.model_copy(update={"virtual_service": ctx.event.virtual_service})


def record_conflict(ctx: On[RoutePlanned | RouteApplied]) -> AutorouteData:
    """Another route claims the host and path: nothing is written, both are named."""
    conflict = ctx.event.conflict or "another route claims the host and path"
    return _noted(ctx.data, f"conflict: {conflict}", conflict=conflict)


def record_approval(ctx: On[CommandRequest]) -> AutorouteData:
    """A human approved the route."""
    by = ctx.command.by if ctx.command else "someone"
    return _noted(ctx.data, f"approved by {by}", approved_by=by)


def record_abort(ctx: On[CommandRequest]) -> AutorouteData:
    """A human stopped it; whatever is in the cluster stays as it is."""
    command = ctx.command
    by = command.by if command else "someone"
    reason = f": {command.reason}" if command and command.reason else ""
    return _noted(ctx.data, f"aborted by {by}{reason}")


def record_retry(ctx: On[CommandRequest]) -> AutorouteData:
    """A human asked to plan again (the other route may be gone)."""
    by = ctx.command.by if ctx.command else "someone"
    return _noted(ctx.data, f"retry by {by}", conflict=None, failure="")


def _verifying(ctx: A, data: AutorouteData, applied: str, note: str) -> AutorouteData:
    return _noted(data, note, applied=applied, verify_started_at=ctx.now, verification="")


def record_applied(ctx: On[RouteApplied]) -> AutorouteData:
    """The VirtualService is written (or was already as wanted): verify it."""
    event = ctx.event
    how = {
        "applied": f"VirtualService {ctx.data.virtual_service} written",
        "unchanged": f"VirtualService {ctx.data.virtual_service} already as wanted",
        "not-configured": "GitOps is not configured on the worker: "
        f"VirtualService {ctx.data.virtual_service} written directly",
    }.get(event.outcome, event.outcome)
    return _verifying(ctx, ctx.data, "direct", how)


def record_pr(ctx: On[RouteApplied]) -> AutorouteData:
    """A pull request writes the VirtualService into git; its merge lets the engine apply it."""
    event = ctx.event
    return _noted(
        ctx.data,
        f"pull request #{event.number} adds the route: {event.url}",
        pr=event.number,
        pr_url=event.url,
        pr_state="open",
        poll_interval_s=event.poll_interval_s,
    )


def _who(event: PullRequestMerged | PullRequestClosed) -> str:
    return f" by {event.sender}" if event.sender else ""


def record_merge(ctx: On[PullRequestMerged]) -> AutorouteData:
    """The pull request was merged: wait for the GitOps engine, then for traffic."""
    data = ctx.data.model_copy(update={"pr_state": "merged"})
    note = f"pull request #{ctx.event.number} merged{_who(ctx.event)}"
    return _verifying(ctx, data, "pull request", note)


def record_merge_polled(ctx: On[PullRequestPolled]) -> AutorouteData:
    """The poll found the pull request merged (its webhook was lost, or is late)."""
    data = ctx.data.model_copy(update={"pr_state": "merged"})
    note = f"pull request #{ctx.event.number} merged (seen by polling)"
    return _verifying(ctx, data, "pull request", note)


def record_pr_closed(ctx: On[PullRequestClosed]) -> AutorouteData:
    """The pull request was refused: no route."""
    failure = f"pull request #{ctx.event.number} was closed unmerged{_who(ctx.event)}"
    return _noted(ctx.data, failure, pr_state="closed", failure=failure)


def record_pr_closed_polled(ctx: On[PullRequestPolled]) -> AutorouteData:
    """The poll found the pull request closed unmerged."""
    failure = f"pull request #{ctx.event.number} was closed unmerged (seen by polling)"
    return _noted(ctx.data, failure, pr_state="closed", failure=failure)


def record_verified(ctx: On[RouteVerified]) -> AutorouteData:
    """Traffic reaches the Service through the route."""
    event = ctx.event
    return _noted(ctx.data, f"verified: {event.detail}", verified=True, verification=event.detail)


def record_check(ctx: On[RouteVerified]) -> AutorouteData:
    """Not yet: remember what the check saw (status shows it)."""
    return ctx.data.model_copy(update={"verification": ctx.event.detail})


def record_timeout(ctx: On[Timeout]) -> AutorouteData:
    """``verifyWithin`` passed without ready backends or traffic."""
    seen = ctx.data.verification or "no check finished"
    failure = f"not verified within {format_duration(ctx.spec.verify_within)}: {seen}"
    return _noted(ctx.data, failure, failure=failure)


def record_failure(ctx: On[ActivityFailed]) -> AutorouteData:
    """A worker failed for good: the reason is the failure."""
    message = str(ctx.event.message).removeprefix(f"{NON_RETRYABLE}: ")
    failure = f"{ctx.event.activity}: {message}"
    return _noted(ctx.data, failure, failure=failure)


def record_drift(ctx: On[DriftChecked]) -> AutorouteData:
    """A hand edit: restored or reported, per the route's drift policy; the diff is kept."""
    event = ctx.event
    if event.restored:
        data = ctx.data.model_copy(update={"drift_restored": ctx.data.drift_restored + 1})
        return _noted(data, "a hand edit of the VirtualService was put back", drift=event.diff)
    return _noted(ctx.data, "a hand edit of the VirtualService is reported", drift=event.diff)


def record_route_gone(ctx: On[DriftChecked]) -> AutorouteData:
    """The VirtualService was deleted by hand: write it again."""
    return _noted(ctx.data, "the VirtualService was deleted by hand; writing it again")


def record_removed(ctx: On[RouteRemoved]) -> AutorouteData:
    """The route is gone."""
    event = ctx.event
    note = {
        "deleted": f"VirtualService {ctx.data.virtual_service} deleted",
        "absent": "no VirtualService of ours to delete",
        "unchanged": "git holds no route to remove",
        "not-configured": "GitOps is not configured: the VirtualService was deleted directly",
    }.get(event.outcome, event.outcome)
    return _noted(ctx.data, note)


def record_removal_pr(ctx: On[RouteRemoved]) -> AutorouteData:
    """A pull request removes the route's file; the GitOps engine prunes it after the merge."""
    event = ctx.event
    return _noted(
        ctx.data,
        f"pull request #{event.number} removes the route: {event.url}",
        pr=event.number,
        pr_url=event.url,
        pr_state="open",
    )


def details(ctx: A) -> str:
    """Markdown for the Temporal UI and ``autopilot status``: host, path, PR, verification."""
    data = ctx.data
    request = data.request
    if request is None:
        lines = ["waiting for a route request"]
    else:
        lines = [
            f"route: **{request.host}** path **{request.path}** via `{request.gateway}`",
            f"requested by: {data.requested_by}",
            f"mode: {request.mode}; drift: {request.drift}",
        ]
    if data.virtual_service:
        lines.append(f"VirtualService: `{data.virtual_service}`")
    if data.pr is not None:
        lines.append(f"pull request: #{data.pr} ({data.pr_state}) {data.pr_url}")
    if data.verification:
        lines.append(
            f"verification: {'passed' if data.verified else 'pending'}: {data.verification}"
        )
    if data.conflict:
        lines.append(f"conflict: {data.conflict}")
    if data.drift:
        lines.append(f"drift:\n```diff\n{data.drift}\n```")
    if data.failure:
        lines.append(f"failure: {data.failure}")
    if data.removal:
        lines.append(f"removal: {data.removal}")
    return "\n\n".join(lines)


# =============================================================================
# The machine
# =============================================================================

autoroute = Operator(
    OPERATOR,
    spec=AutorouteSpec,
    data=AutorouteData,
    initial="Requested",
    senses=[
        # Every Service: an annotated one asks for a route; one that lost it, or is gone, ends it.
        WatchKind(
            group="",
            version="v1",
            plural="services",
            map=service_changed,
            sends=(RouteRequested, RouteWithdrawn),
        ),
        # The VirtualServices this operator wrote: a hand edit is drift.
        WatchKind(
            group="networking.istio.io",
            version="v1",
            plural="virtualservices",
            labels="app.kubernetes.io/managed-by=autopilot",
            map=route_changed,
            sends=(RouteEdited,),
        ),
        # GitHub: pushes of service manifests, and the route's pull requests.
        Dedicated(
            "github",
            sends=(ServiceCheckedIn, ServiceCheckedOut, PullRequestMerged, PullRequestClosed),
        ),
    ],
    details=details,
    description=(
        "Gives a Service checked in to git (or seen in the cluster) with the annotation "
        f"{ROUTE}: host/path a route: an Istio VirtualService on the gateway, written directly or "
        "by a pull request, refused when another route claims the host and path, and verified "
        "by traffic before it is Routed."
    ),
)

autoroute.state("Requested", settled=True, doc="waiting for the Service or its push")
autoroute.state("Reading", run=[read_manifest], doc="reading the pushed manifest from GitHub")
autoroute.state("Planned", run=[plan_route], doc="looking for routes that claim host and path")
autoroute.state(
    "AwaitingApproval", settled=True, doc="the Service asks for approval before its route"
)
autoroute.state(
    "Conflict",
    settled=True,
    failed=True,
    doc="another route claims the host and path; nothing was written",
)
autoroute.state("Applying", run=[apply_route], doc="writing the VirtualService, or its PR")
autoroute.state(
    "InReview",
    run=[poll_pull_request],
    after=poll_interval,
    settled=True,
    doc="waiting for the route's pull request to be merged",
)
autoroute.state(
    "Verifying",
    run=[verify_route],
    after=verify_wait,
    doc="waiting for ready backends and traffic through the route",
)
autoroute.state("Routed", settled=True, doc="traffic reaches the Service through its route")
autoroute.state("CheckingDrift", run=[check_drift], doc="comparing the live route with ours")
autoroute.state("Removing", run=[remove_route], doc="deleting the route, or its PR")
autoroute.state(
    "RemovalInReview",
    run=[poll_pull_request],
    after=poll_interval,
    settled=True,
    doc="waiting for the pull request removing the route",
)
autoroute.state(
    "Failed",
    settled=True,
    failed=True,
    doc="not routed; the reason is in status; retry plans again",
)
autoroute.state("Removed", final=True, doc="the Service asks for no route; none is left")
autoroute.state("Aborted", final=True, failed=True, doc="stopped by a human; nothing undone")

# -- triggers: the cluster and git ------------------------------------------------------

autoroute.on(ANY, RouteRequested, go="Planned", when=requested, do=record_request)
autoroute.on(
    ["Requested", "Failed"], RouteRequested, go="Failed", when=unreadable, do=record_unreadable
)
# Not in Requested: an event a fresh machine would ignore must not be carried to a new run
# (the engine hands a finished run's late events on when the initial state would act).
RUNNING = [name for name, state in autoroute.states.items() if not state.final][1:]
autoroute.on(RUNNING, RouteRequested, go=None, do=record_same_request, doc="the same request")
autoroute.on(ANY, ServiceCheckedIn, go="Reading", do=record_checkin)
autoroute.on("Reading", ManifestRead, go="Planned", when=manifest_asks, do=record_manifest)
autoroute.on(
    "Reading", ManifestRead, go="Routed", when=manifest_same_routed, do=record_manifest_same
)
autoroute.on("Reading", ManifestRead, go="Planned", when=manifest_same, do=record_manifest_same)
autoroute.on(
    "Reading", ManifestRead, go="Failed", when=manifest_unreadable, do=record_manifest_failure
)
autoroute.on("Reading", ManifestRead, go="Removing", when=manifest_withdraws, do=withdraw_in_git)
autoroute.on("Reading", ManifestRead, go="Removed", do=no_route_asked)
# Nothing was routed yet: nothing to remove (and a late withdrawal never starts a new run).
autoroute.on("Requested", ServiceCheckedOut, go="Removed", do=record_checkout)
autoroute.on("Requested", RouteWithdrawn, go="Removed", do=record_withdrawal)
autoroute.on(ANY, ServiceCheckedOut, go="Removing", do=record_checkout)
autoroute.on(ANY, RouteWithdrawn, go="Removing", do=record_withdrawal)

# -- plan, approve, apply --------------------------------------------------------------

autoroute.on("Planned", RoutePlanned, go="Conflict", when=in_conflict, do=record_conflict)
autoroute.on("Planned", RoutePlanned, go="AwaitingApproval", when=needs_approval, do=record_plan)
autoroute.on("Planned", RoutePlanned, go="Applying", do=record_plan)
autoroute.on(
    "AwaitingApproval",
    Command("approve", doc="Approve the route the Service asks for."),
    go="Applying",
    do=record_approval,
)
autoroute.on("Applying", RouteApplied, go="Conflict", when=apply_conflict, do=record_conflict)
autoroute.on("Applying", RouteApplied, go="InReview", when=pull_request_opened, do=record_pr)
autoroute.on("Applying", RouteApplied, go="Verifying", do=record_applied)

# -- the pull request's review ---------------------------------------------------------

autoroute.on("InReview", PullRequestMerged, go="Verifying", when=is_our_pr, do=record_merge)
autoroute.on(
    "InReview", PullRequestPolled, go="Verifying", when=polled_merged, do=record_merge_polled
)
autoroute.on("InReview", PullRequestClosed, go="Failed", when=is_our_pr, do=record_pr_closed)
autoroute.on(
    "InReview", PullRequestPolled, go="Failed", when=polled_closed, do=record_pr_closed_polled
)
autoroute.on("InReview", PullRequestPolled, go=None, doc="still open")
autoroute.on("InReview", Timeout, go="InReview", doc="read the pull request again")

# -- verification by traffic ------------------------------------------------------------

autoroute.on("Verifying", RouteVerified, go="Routed", when=verified, do=record_verified)
autoroute.on("Verifying", RouteVerified, go=None, do=record_check, doc="not yet")
autoroute.on("Verifying", Timeout, go="Failed", when=past_deadline, do=record_timeout)
autoroute.on("Verifying", Timeout, go="Verifying", doc="check again")

# -- drift -------------------------------------------------------------------------------

autoroute.on("Routed", RouteEdited, go="CheckingDrift")
autoroute.on([s for s in RUNNING if s != "Routed"], RouteEdited, go=None, doc="checked once Routed")
autoroute.on("CheckingDrift", DriftChecked, go="Applying", when=route_gone, do=record_route_gone)
autoroute.on("CheckingDrift", DriftChecked, go="Routed", when=drifted, do=record_drift)
autoroute.on("CheckingDrift", DriftChecked, go="Routed", doc="as generated")

# -- removal ------------------------------------------------------------------------------

autoroute.on(
    "Removing", RouteRemoved, go="RemovalInReview", when=removal_in_review, do=record_removal_pr
)
autoroute.on("Removing", RouteRemoved, go="Removed", do=record_removed)
autoroute.on("RemovalInReview", PullRequestMerged, go="Removed", when=is_our_pr)
autoroute.on("RemovalInReview", PullRequestPolled, go="Removed", when=polled_merged)
autoroute.on("RemovalInReview", PullRequestClosed, go="Routed", when=is_our_pr, do=record_pr_closed)
autoroute.on(
    "RemovalInReview",
    PullRequestPolled,
    go="Routed",
    when=polled_closed,
    do=record_pr_closed_polled,
)
autoroute.on("RemovalInReview", PullRequestPolled, go=None, doc="still open")
autoroute.on("RemovalInReview", Timeout, go="RemovalInReview", doc="read the pull request again")

# -- failures and human commands ---------------------------------------------------------

autoroute.on(
    ["Reading", "Planned", "Applying", "Verifying", "CheckingDrift"],
    ActivityFailed,
    go="Failed",
    do=record_failure,
)
retry = Command("retry", doc="Plan the route again (after a conflict or a failure).")
autoroute.on(["Conflict", "Failed"], retry, go="Planned", when=has_request, do=record_retry)
autoroute.on(
    ["Requested", "AwaitingApproval", "Conflict", "InReview", "Verifying", "Routed", "Failed"],
    Command("abort", doc="Stop: nothing more is written, and nothing is undone."),
    go="Aborted",
    do=record_abort,
)
autoroute.check()


@register
# Auto-upgrade: a fix to how a route is written must reach the routes already managed.
@workflow.defn(name=OPERATOR, versioning_behavior=auto_upgrade())
class AutorouteWorkflow(OperatorWorkflow):
    """One autoroute instance per Service: ``autoroute/<namespace>/<service>``."""

    operator = autoroute

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the route until it is removed or aborted."""
        return await self.run_operator(input)
