"""The base class of every operator event.

It lives in ``models`` so that operators' event models (``models/canary.py``, ...) can be
shared by watchers, activities and workflows without importing the engine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """Base class of every event model.

    The event's type name, as carried by :class:`models.operator.EventEnvelope.type`, is the
    class name. Unknown fields are refused, so a watcher's typo is seen, not ignored.
    """

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def type_name(cls) -> str:
        """The name watchers put in ``EventEnvelope.type`` for this event."""
        return cls.__name__
