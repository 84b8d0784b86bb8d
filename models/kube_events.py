"""What an operator tells the cluster's users as Kubernetes Events: the request and its limits.

Why a model: the workflow knows some facts only it can see (an analysis verdict, a gate
waiting) and hands them to one worker, ``<operator>.record_event``, which writes the Event;
like every activity argument it is one pydantic model. Activities that write Events
themselves (a weight set, a rollback) build the same :class:`EventNote`.

Text is cut to the bounds, never refused: a message is built from live data (metric
values, hook answers), and refusing it inside a workflow would fail the workflow task.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from models.operator import Target

#: The longest message an Event keeps (client-go's recorder cuts notes there too).
MAX_MESSAGE = 1024
#: The longest message key; keys are written by operators, so this is generous.
MAX_KEY = 256
#: The longest occurrence key: an envelope ID (512) or a step key, and a reason.
MAX_OCCURRENCE = 1024
#: The longest reason the events API accepts.
MAX_REASON = 128

#: ``Normal`` or ``Warning``, the two types Kubernetes knows.
EventType = Literal["Normal", "Warning"]


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


class EventNote(BaseModel):
    """One fact for the Events of an object: its type, reason and a sentence.

    ``key`` names what the message is about when its text changes from one occurrence to
    the next (the metric values of a failed check at one weight): occurrences of the same
    reason and key are one Event whose ``count`` grows. Without a key the message itself
    is the key, as in client-go.
    """

    type: EventType = "Normal"
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=r"^[A-Z][A-Za-z0-9]*$")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY)

    @field_validator("message", mode="before")
    @classmethod
    def _cut_message(cls, value: Any) -> Any:
        return _cut(value, MAX_MESSAGE)

    @field_validator("key", mode="before")
    @classmethod
    def _cut_key(cls, value: Any) -> Any:
        return _cut(value, MAX_KEY)

    @property
    def message_key(self) -> str:
        """What makes two occurrences the same Event (with the object and the reason)."""
        return self.key or self.message


class RecordEvent(BaseModel):
    """The argument of ``<operator>.record_event``: one note about one operator's target.

    ``occurrence`` is stable across retries of the same request (the workflow builds it
    from the ID of the event it handled), so a retried activity adds nothing.
    """

    workflow_id: str = Field(min_length=1, max_length=512)
    target: Target
    occurrence: str = Field(min_length=1, max_length=MAX_OCCURRENCE)
    note: EventNote

    @field_validator("occurrence", mode="before")
    @classmethod
    def _cut_occurrence(cls, value: Any) -> Any:
        return _cut(value, MAX_OCCURRENCE)
