"""The autoroute operator's contract: the route request, its spec, memory and events.

Why here and not in the workflow: the route request is read from a Service's annotations
in three places that may not import each other (the Kubernetes sense in the workflow
module, the worker that reads a manifest pushed to git, the docs' annotation table), so the
one parser lives in the shared contract. Pydantic only.

A Service asks for a route with annotations (``docs/operators/autoroute.md`` lists them)::

    metadata:
      annotations:
        autopilot.dev/route: shop.example.com/cart       # host/path, required
        autopilot.dev/route-gateway: istio-system/public  # optional, and the others below

and the operator writes one Istio VirtualService, ``<service>-route``, bound to the gateway,
that sends ``host`` + path prefix to the Service.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.durations import Duration, parse_duration
from models.events import Event
from models.limits import MAX_NAME, MAX_URL

#: The operator's name: workflow type, activity prefix, workflow ID's first part.
OPERATOR = "autoroute"

#: ``host/path``: the one annotation that asks for a route.
ROUTE = "autopilot.dev/route"
GATEWAY = "autopilot.dev/route-gateway"
PORT = "autopilot.dev/route-port"
TIMEOUT = "autopilot.dev/route-timeout"
RETRIES = "autopilot.dev/route-retries"
APPROVAL = "autopilot.dev/route-approval"
MODE = "autopilot.dev/route-mode"
DRIFT = "autopilot.dev/route-drift"

#: The gateway a route binds to when the Service names none.
DEFAULT_GATEWAY = "istio-system/ingressgateway"
#: Most retry attempts a route may ask for.
MAX_RETRIES = 10
#: Longest path, in characters.
MAX_PATH = 1024
#: Longest diff kept in the data (status shows it), in characters.
MAX_DIFF = 4096

#: Every annotation, with what it means: the docs' reference table is checked against it.
ANNOTATIONS: dict[str, str] = {
    ROUTE: "`host/path` the route serves, e.g. `shop.example.com/cart` (path defaults to `/`). "
    "Required: without it the Service has no route",
    GATEWAY: f"the Istio Gateway `namespace/name` the route binds to (default `{DEFAULT_GATEWAY}`)",
    PORT: "the Service port the route sends to (default: the Service's only port, else none)",
    TIMEOUT: "the route's request timeout, Go syntax (`5s`, `1m30s`); unset: Istio's default",
    RETRIES: f"retry attempts on failure, 0 to {MAX_RETRIES}; unset: Istio's default",
    APPROVAL: "`required`: the route waits for `autopilot autoroute approve` before it is applied",
    MODE: "`direct` (default): the worker writes the VirtualService; `pull-request`: a pull "
    "request to the configuration repository writes it, and the GitOps engine applies it",
    DRIFT: "what a hand edit of the generated VirtualService meets: `restore` (default) puts it "
    "back, `report` leaves it and shows the diff in status",
}

_HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_GATEWAY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

DriftPolicy = Literal["restore", "report"]
RouteMode = Literal["direct", "pull-request"]


class RouteRequestError(ValueError):
    """An annotation does not say what the operator can do; the message names it."""


class RouteRequest(BaseModel):
    """What a Service's annotations ask for: one path of one host, through one gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=MAX_NAME, pattern=_HOST.pattern)
    path: str = Field(default="/", min_length=1, max_length=MAX_PATH, pattern=_PATH.pattern)
    gateway: str = Field(
        default=DEFAULT_GATEWAY, min_length=1, max_length=2 * MAX_NAME, pattern=_GATEWAY.pattern
    )
    port: int | None = Field(default=None, ge=1, le=65535)
    timeout: str | None = Field(default=None, max_length=64)
    retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    approval: bool = False
    mode: RouteMode = "direct"
    drift: DriftPolicy = "restore"

    @property
    def claim(self) -> str:
        """``host/path`` without a trailing slash (but ``host/`` for the root)."""
        path = self.path.rstrip("/") or "/"
        return f"{self.host}{path}"

    def fingerprint(self) -> str:
        """A short hash of the whole request: one pull request branch per distinct request."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _int(annotations: Mapping[str, str], key: str) -> int | None:
    raw = annotations.get(key, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise RouteRequestError(f"{key}: {raw!r} is not a whole number") from None


def parse_route(annotations: Mapping[str, str]) -> RouteRequest | None:
    """The route a Service's annotations ask for; ``None`` when it asks for none.

    Raises:
        RouteRequestError: an annotation cannot be read; the message names it and says why.
    """
    raw = annotations.get(ROUTE, "").strip()
    if not raw:
        return None
    host, slash, path = raw.partition("/")
    values: dict[str, object] = {"host": host.lower(), "path": f"/{path}" if slash else "/"}
    gateway = annotations.get(GATEWAY, "").strip()
    if gateway:
        values["gateway"] = gateway
    values["port"] = _int(annotations, PORT)
    values["retries"] = _int(annotations, RETRIES)
    timeout = annotations.get(TIMEOUT, "").strip()
    if timeout:
        try:
            parse_duration(timeout)
        except ValueError as error:
            raise RouteRequestError(f"{TIMEOUT}: {error}") from None
        values["timeout"] = timeout
    approval = annotations.get(APPROVAL, "").strip().lower()
    if approval not in ("", "required", "none"):
        raise RouteRequestError(f"{APPROVAL}: {approval!r} is not 'required' or 'none'")
    values["approval"] = approval == "required"
    for key, field in ((MODE, "mode"), (DRIFT, "drift")):
        value = annotations.get(key, "").strip().lower()
        if value:
            values[field] = value
    try:
        return RouteRequest.model_validate(values)
    except ValidationError as error:
        problems = []
        names = {"host": ROUTE, "path": ROUTE, "gateway": GATEWAY, "port": PORT}
        names |= {"retries": RETRIES, "mode": MODE, "drift": DRIFT, "timeout": TIMEOUT}
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            problems.append(f"{names.get(field, field)}: {item['msg']}")
        raise RouteRequestError("; ".join(problems)) from None


def route_name(service: str) -> str:
    """The VirtualService the operator writes for a Service: ``<service>-route``."""
    full = f"{service}-route"
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(service.encode()).hexdigest()[:8]
    return f"{service[: MAX_NAME - 15]}-{digest}-route"


# =============================================================================
# The spec: defaults for every route; the annotations say the rest
# =============================================================================


class AutorouteSpec(BaseModel):
    """What an instance is started with (the webhook and the sense start with ``{}``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    verify_within: Duration = Field(
        default=timedelta(minutes=5),
        alias="verifyWithin",
        description="how long Verifying may wait for ready backends and traffic before Failed",
    )


# =============================================================================
# Memory
# =============================================================================


class AutorouteData(BaseModel):
    """What the machine remembers; ``autopilot status`` shows it."""

    MAX_NOTES: ClassVar[int] = 20

    request: RouteRequest | None = Field(default=None, description="the route asked for")
    requested_by: str = Field(default="", max_length=512, description="where the request came from")
    service_uid: str = Field(default="", max_length=64)
    # the push being read (ServiceCheckedIn), until the manifest is read
    git_path: str = Field(default="", max_length=1024)
    git_commit: str = Field(default="", max_length=64)
    git_repository: str = Field(default="", max_length=2 * MAX_NAME)
    virtual_service: str = Field(default="", max_length=2 * MAX_NAME, description="ns/name")
    conflict: str | None = Field(default=None, max_length=2048)
    approved_by: str | None = Field(default=None, max_length=MAX_NAME)
    pr: int | None = None
    pr_url: str = Field(default="", max_length=MAX_URL)
    pr_state: str = Field(default="", max_length=32)
    poll_interval_s: float = 30.0
    applied: str = Field(default="", max_length=64, description="how the route reached the cluster")
    verify_started_at: datetime | None = None
    verification: str = Field(default="", max_length=1024, description="the last check's result")
    verified: bool = False
    drift: str = Field(default="", max_length=MAX_DIFF, description="the last hand edit, as a diff")
    drift_restored: int = Field(default=0, description="hand edits put back")
    failure: str = Field(default="", max_length=2048)
    removal: str = Field(default="", max_length=512, description="why the route is removed")
    notes: list[str] = Field(default_factory=list, max_length=20)


# =============================================================================
# Events from the senses
# =============================================================================


class RouteRequested(Event):
    """The Service is in the cluster with a route annotation (the Kubernetes sense)."""

    request: RouteRequest | None = None
    error: str | None = Field(default=None, max_length=2048, description="why it cannot be read")
    service_uid: str = Field(default="", max_length=64)


class RouteWithdrawn(Event):
    """The Service was deleted, or its route annotation removed (the Kubernetes sense)."""

    reason: str = Field(default="", max_length=512)


class _GitFile(Event):
    """The GitHub webhook's payload for one service file of a push."""

    model_config = ConfigDict(extra="ignore")

    path: str = Field(max_length=1024)
    change: str = Field(default="", max_length=16)
    repository: str = Field(default="", max_length=2 * MAX_NAME)
    ref: str = Field(default="", max_length=MAX_NAME)
    commit: str = Field(default="", max_length=64)
    after: str = Field(default="", max_length=64)
    compare: str = Field(default="", max_length=MAX_URL)


class ServiceCheckedIn(_GitFile):
    """A push to the default branch added or changed the Service's manifest."""


class ServiceCheckedOut(_GitFile):
    """A push to the default branch removed the Service's manifest."""


class RouteEdited(Event):
    """The generated VirtualService changed in the cluster (the drift sense)."""

    resource_version: str = Field(default="", max_length=64)


# =============================================================================
# Events the workers return
# =============================================================================


class ManifestRead(Event):
    """The Service manifest at the pushed commit, read from GitHub."""

    found: bool = True
    request: RouteRequest | None = None
    error: str | None = Field(default=None, max_length=2048)


class RoutePlanned(Event):
    """Who else claims the host and path, and the VirtualService to write."""

    virtual_service: str = Field(max_length=2 * MAX_NAME, description="ns/name")
    conflict: str | None = Field(default=None, max_length=2048)


class RouteApplied(Event):
    """The route reached the cluster, or a pull request will bring it."""

    outcome: Literal["applied", "unchanged", "opened", "found", "not-configured", "conflict"]
    number: int | None = None
    url: str = Field(default="", max_length=MAX_URL)
    conflict: str | None = Field(default=None, max_length=2048)
    poll_interval_s: float = 30.0


class RouteVerified(Event):
    """One verification: are there ready backends, and does traffic reach the Service."""

    ok: bool
    backends: int = 0
    requests: float | None = None
    detail: str = Field(default="", max_length=1024)


class RouteRemoved(Event):
    """The route is gone from the cluster, or a pull request will remove it."""

    outcome: Literal["deleted", "absent", "opened", "found", "unchanged", "not-configured"]
    number: int | None = None
    url: str = Field(default="", max_length=MAX_URL)


class DriftChecked(Event):
    """The live VirtualService compared with the generated one."""

    diff: str = Field(default="", max_length=MAX_DIFF)
    restored: bool = False
    gone: bool = False
