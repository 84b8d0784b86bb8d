"""``POST /v1/events``: one generic event, for any operator, from any tool that can sign.

The body names the operator and the target directly; with a ``spec`` it starts the
workflow when none runs (signal-with-start), without one it only signals a running one.
The caller's ``id`` becomes the envelope ID unchanged, so resending is safe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.operator import OPERATOR_NAME_PATTERN, EventEnvelope
from service.settings import EVENT_TYPE_PATTERN
from watchers.delivery import DeliveryRequest
from watchers.webhooks.errors import Rejection, bad_request
from watchers.webhooks.routing import Routed, describe, make_target

#: ``EventEnvelope.source`` of events from this endpoint.
SOURCE = "webhook/events"


class GenericEvent(BaseModel):
    """The body of ``POST /v1/events``. Unknown fields are refused, to catch typos."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=512, description="deterministic; deduplicates")
    operator: str = Field(pattern=OPERATOR_NAME_PATTERN, description="the workflow type")
    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    type: str = Field(pattern=EVENT_TYPE_PATTERN, description="the event type, PascalCase")
    payload: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] | None = Field(
        default=None, description="present: start the workflow with it if none runs"
    )


def route_event(
    event: GenericEvent, allowed: dict[str, list[str]] | None, now: datetime | None = None
) -> Routed:
    """Map a validated event to its one delivery request.

    Args:
        event: the validated body.
        allowed: operator -> accepted event types; ``None`` accepts all.
        now: when the event was received (UTC now by default).

    Raises:
        Rejection: 400 naming ``namespace``/``name``, or ``operator``/``type`` when
            ``allowed`` does not list them.
    """
    if allowed is not None:
        if event.operator not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise bad_request(
                f"unknown operator {event.operator!r}; known: {known}",
                "operator",
            )
        if event.type not in allowed[event.operator]:
            known = ", ".join(sorted(allowed[event.operator])) or "none"
            raise bad_request(
                f"unknown event type {event.type!r} for operator {event.operator!r}; "
                f"known: {known}",
                "type",
            )
    target = make_target(event.namespace, event.name)
    if isinstance(target, list):
        message = f"the event names no valid target: {describe(target)}"
        raise Rejection(400, "schema_violation", message, target)
    envelope = EventEnvelope(
        id=event.id,
        type=event.type,
        payload=event.payload,
        source=SOURCE,
        observed_at=now or datetime.now(UTC),
    )
    return Routed([DeliveryRequest(event.operator, target, envelope, event.spec)])
