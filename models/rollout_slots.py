"""The contract of the rollout-slots semaphore: how many canary rollouts may run at once.

Why a workflow: the cap must hold across worker restarts and replicas, so the permits live in
one durable workflow per scope (``rollout-slots/global``, ``rollout-slots/ns/<namespace>``).
Canaries ask for a permit through an activity (signal-with-start) and get it back as a
:class:`SlotGranted` event; the workflow and the activities share the models below.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.events import Event
from models.operator import EventEnvelope

#: Workflow type of the semaphore.
SLOTS_WORKFLOW = "rollout-slots"
#: Signal asking for a permit (its payload is a :class:`SlotRequest`).
ACQUIRE_SIGNAL = "acquire"
#: Signal giving a permit back, or leaving the queue (a :class:`SlotRelease`).
RELEASE_SIGNAL = "release"
#: Query answering a :class:`SlotsStatus`.
SLOTS_QUERY = "slots"
#: Activity that signals a :class:`SlotGranted` event to a holder.
GRANT_ACTIVITY = "rollout_slots.grant"
#: Activity that returns which of the given workflows are closed.
CLOSED_ACTIVITY = "rollout_slots.closed_holders"

#: Scope of the global cap.
GLOBAL_SCOPE = "global"


def namespace_scope(namespace: str) -> str:
    """The scope of the per-namespace cap of ``namespace``."""
    return f"ns/{namespace}"


def slots_workflow_id(scope: str) -> str:
    """``rollout-slots/<scope>``: the one semaphore workflow of a scope."""
    return f"{SLOTS_WORKFLOW}/{scope}"


class SlotHolder(BaseModel):
    """A workflow that holds, or waits for, a permit."""

    workflow_id: str
    request_id: str = Field(description="the request being answered (idempotency key)")
    since: datetime | None = None


class SlotsInput(BaseModel):
    """Start (or continue-as-new) input of the semaphore."""

    scope: str
    limit: int = Field(ge=1)
    check_every_s: float = Field(default=60.0, gt=0, description="how often holders are checked")
    holders: list[SlotHolder] = Field(default_factory=list)
    waiters: list[SlotHolder] = Field(default_factory=list)


class SlotRequest(BaseModel):
    """Ask for a permit; repeating it is harmless (a holder is granted again)."""

    holder: str = Field(description="workflow ID of the asking rollout")
    request_id: str
    limit: int = Field(ge=1, description="the cap now configured; the latest request wins")


class SlotRelease(BaseModel):
    """Give the permit back, or leave the queue; unknown holders are ignored."""

    holder: str


class SlotGrant(BaseModel):
    """Input of the grant activity."""

    scope: str
    holder: str
    request_id: str


class SlotsStatus(BaseModel):
    """What the semaphore holds, for humans and tests."""

    scope: str
    limit: int
    holders: list[str]
    waiters: list[str]


class QueueJoined(Event):
    """A rollout asked for the permit of ``scope`` (None: it holds every permit it needs)."""

    scope: str | None = None
    limit: int | None = None


class SlotGranted(Event):
    """The semaphore of ``scope`` gave this rollout a permit."""

    scope: str


def granted_envelope(grant: SlotGrant, at: datetime) -> EventEnvelope:
    """The ``SlotGranted`` event a semaphore sends to a rollout, with a stable ID.

    The ID names the scope and the request, so a grant delivered twice (a retried activity,
    a semaphore that continued as new) moves the rollout once.
    """
    return EventEnvelope(
        id=f"slot-granted:{grant.scope}:{grant.request_id}",
        type=SlotGranted.type_name(),
        payload=SlotGranted(scope=grant.scope).model_dump(mode="json"),
        source=slots_workflow_id(grant.scope),
        observed_at=at,
    )
