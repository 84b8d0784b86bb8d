"""The demo's last act: a new Service checked in gets its route (the autoroute operator).

After the rollouts, the demo does what a team checking in a new service does, with the real
``kubectl``: it applies ``demo/cart.yaml``, a Deployment and its Service annotated
``autopilot.dev/route: shop.example.com/cart``. Nothing is announced by the demo: the
Kubernetes watcher in the demo's worker sees the annotated Service and starts the durable
workflow ``autoroute/<namespace>/cart`` (the operator's cluster trigger, direct mode, no
GitHub), which checks that no other route claims the host and path, writes the
VirtualService ``cart-route`` and waits until simulated traffic through the gateway reaches
the Service before it says ``Routed``.

The act is followed from the machine's ``status`` query (the states it passed, its notes,
its verification), with the polling of :mod:`cli.demo_rollout`; nothing here draws: a
:class:`RouteObserver` is told what changed (:class:`cli.demo_view.RouteView` draws it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import yaml
from temporalio.client import Client

from cli import demo_rollout as rollout
from cli.errors import CliError
from models.autoroute import OPERATOR, ROUTE, RouteRequest, parse_route, route_name
from models.operator import OperatorStatus, Target

#: The new service: its Deployment and annotated Service (no namespace: ``-n`` says it).
ROUTE_MANIFEST = rollout.ROOT / "demo" / "cart.yaml"
#: The Service's name (and its Deployment's).
SERVICE = "cart"
#: The state the demo expects the route to end in.
EXPECT = "Routed"
#: The longest the route may take before the demo gives up on it.
ROUTE_DEADLINE_S = 120.0
#: What the act creates in the demo's namespace: the app's objects and the generated route.
ROUTE_OBJECTS = (
    ("virtualservices", route_name(SERVICE)),
    ("services", SERVICE),
    ("deployments", SERVICE),
)


@dataclass
class RouteOutcome:
    """How the new Service's route ended.

    Attributes:
        claim: ``host/path`` the Service asked for.
        state: The machine's state when it settled (``Routed``, ``Conflict``, ``Failed``...).
        states: Every state it passed, in order, the first one included.
        seconds: How long it took, from ``kubectl apply`` to the settled state.
        virtual_service: The VirtualService written (``namespace/name``), once planned.
        verification: What the last check by traffic saw.
        reason: Why it did not route (the conflict or the failure), when it did not.
    """

    claim: str
    state: str
    states: list[str]
    seconds: float
    virtual_service: str = ""
    verification: str = ""
    reason: str = ""

    @property
    def as_expected(self) -> bool:
        """Whether the Service got its route."""
        return self.state == EXPECT


class RouteObserver(Protocol):
    """Told about the route at every look (the terminal view implements it)."""

    def update(self, status: OperatorStatus, seconds: float) -> None:
        """The machine's status, ``seconds`` after the Service was applied."""


# =============================================================================
# The manifest and the commands
# =============================================================================


def _service_of(documents: list[dict[str, object]]) -> dict[str, object]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "Service":
            return document
    raise CliError(f"{rollout.shown(ROUTE_MANIFEST)} holds no Service")


def requested_route(manifest: Path) -> RouteRequest:
    """The route the manifest's Service asks for, read by the operator's own parser.

    Raises:
        CliError: It asks for none, or its annotations cannot be read.
    """
    service = _service_of(list(yaml.safe_load_all(manifest.read_text())))
    metadata = service.get("metadata")
    annotations = (metadata.get("annotations") if isinstance(metadata, dict) else None) or {}
    request = parse_route({str(k): str(v) for k, v in dict(annotations).items()})
    if request is None:
        raise CliError(f"{rollout.shown(manifest)}: the Service has no {ROUTE} annotation")
    return request


def route_manifest(namespace: str, scratch: Path) -> Path:
    """The manifest the act applies: ``demo/cart.yaml``, or, in another namespace than
    ``demo``, a copy whose host starts with the namespace.

    Routes are checked for conflicts across the whole cluster: a run kept with ``--keep``
    still routes ``shop.example.com/cart``, and the next run (in ``demo-2``) would rightly
    end in ``Conflict``.
    """
    request = requested_route(ROUTE_MANIFEST)
    if namespace == "demo":
        return ROUTE_MANIFEST
    documents = list(yaml.safe_load_all(ROUTE_MANIFEST.read_text()))
    service = _service_of(documents)
    metadata = service["metadata"]
    assert isinstance(metadata, dict)
    metadata["annotations"][ROUTE] = f"{namespace}.{request.host}{request.path}"
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"demo-{SERVICE}-{namespace}.yaml"
    path.write_text(
        f"# {rollout.shown(ROUTE_MANIFEST)} with the host {namespace}.{request.host} "
        f"(autopilot demo in namespace {namespace})\n"
        + yaml.safe_dump_all(documents, sort_keys=False)
    )
    requested_route(path)
    return path


def route_commands(namespace: str, manifest: Path) -> list[list[str]]:
    """The ``kubectl`` commands that check the new service in: one ``apply``."""
    return [["apply", "-n", namespace, "-f", rollout.shown(manifest)]]


def routes_command(namespace: str) -> list[str]:
    """``kubectl get virtualservice``: the generated route beside the canary's."""
    return ["get", "virtualservice", "-n", namespace]


# =============================================================================
# Following the route
# =============================================================================


def states_passed(status: OperatorStatus) -> list[str]:
    """The states the machine went through, in order (transitions within a state left out)."""
    moves = [t for t in status.transitions if t.source != t.target]
    if not moves:
        return [status.state]
    return [moves[0].source, *(t.target for t in moves)]


def is_settled(status: OperatorStatus) -> bool:
    """Whether the machine stopped on its own: Routed, or waiting on a human, or final."""
    return status.final or (status.settled and status.state != "Requested")


def is_earlier(status: OperatorStatus, since: datetime) -> bool:
    """Whether ``status`` is the end of an earlier demo's run (the namespace is reused)."""
    return status.final and status.since < since


def outcome_of(status: OperatorStatus, claim: str, seconds: float) -> RouteOutcome:
    """How the route ended, from the machine's last status."""
    data = status.data
    reason = str(data.get("conflict") or data.get("failure") or status.error or "")
    return RouteOutcome(
        claim=claim,
        state=status.state,
        states=states_passed(status),
        seconds=seconds,
        virtual_service=str(data.get("virtual_service") or ""),
        verification=str(data.get("verification") or ""),
        reason=reason,
    )


async def follow_route(
    temporal: Client, target: Target, claim: str, since: datetime, observer: RouteObserver
) -> RouteOutcome:
    """Look at ``autoroute/<namespace>/<service>`` until it settles; how it ended.

    ``since`` is when the Service was applied: until the watcher has started the workflow,
    or while the workflow shown is an earlier demo's, there is nothing to look at.

    Raises:
        CliError: The workflow itself ended badly, or the route took far too long.
    """
    workflow = target.workflow_id(OPERATOR)
    begun = time.monotonic()
    while True:
        status = await rollout.status_of(temporal, workflow, since)
        seconds = time.monotonic() - begun
        if status is not None and not is_earlier(status, since):
            observer.update(status, seconds)
            if is_settled(status):
                return outcome_of(status, claim, seconds)
        if seconds > ROUTE_DEADLINE_S:
            raise CliError(f"{workflow} did not settle within {ROUTE_DEADLINE_S:.0f}s")
        await asyncio.sleep(rollout.POLL_S)


@dataclass
class News:
    """What changed in a route's status since the last look (the view words it).

    Attributes:
        moves: ``(from, to)`` of every state change not told yet.
        notes: The machine's notes not told yet (what it decided, what it wrote).
        check: The last verification's result, when it is new and not yet a pass.
    """

    moves: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    check: str = ""


@dataclass
class NewsReader:
    """Turns successive statuses of one route into :class:`News`, each thing told once."""

    _moves: set[tuple[str, str, str]] = field(default_factory=set)
    _notes: int = 0
    _check: str = ""

    def read(self, status: OperatorStatus) -> News:
        """What ``status`` says that the earlier ones did not."""
        news = News()
        for move in status.transitions:
            key = (move.at.isoformat(), move.event_id, move.target)
            if move.source != move.target and key not in self._moves:
                news.moves.append((move.source, move.target))
            self._moves.add(key)
        notes = [str(note) for note in status.data.get("notes") or []]
        news.notes = notes[self._notes :]
        self._notes = len(notes)
        check = str(status.data.get("verification") or "")
        if check and check != self._check and not status.data.get("verified"):
            news.check = check
        self._check = check
        return news
