"""The contract of the resilience operator: its spec, its memory, its events, its levels.

The resilience operator watches each opted-in Istio service's 5xx rate and p99 latency and,
when the service degrades, tightens its traffic policy one level at a time (outlier
detection, then connection-pool limits, then both stricter), stepping back one level at a
time once it is healthy again. A level above ``approvalAbove`` waits for a human. Every
change is recorded with why.

The levels are data (:data:`LEVELS`): the DestinationRule ``trafficPolicy`` each one writes,
shared by the activity that writes it and the docs that show it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.events import Event
from models.senses import Reading

#: The operator's name: its workflow type, its activities' prefix and its annotation.
OPERATOR = "resilience"
#: The annotation that opts a Service in (any value).
OPT_IN = f"autopilot.dev/{OPERATOR}"
#: Most changes kept in the data (the oldest are dropped first).
MAX_CHANGES = 50

#: Each level's DestinationRule traffic policy; level 0 is "no policy of ours".
LEVELS: tuple[dict[str, Any], ...] = (
    {},
    {
        "outlierDetection": {
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 30,
        }
    },
    {
        "outlierDetection": {
            "consecutive5xxErrors": 3,
            "interval": "5s",
            "baseEjectionTime": "60s",
            "maxEjectionPercent": 50,
        },
        "connectionPool": {
            "http": {"http1MaxPendingRequests": 100, "maxRequestsPerConnection": 10}
        },
    },
    {
        "outlierDetection": {
            "consecutive5xxErrors": 2,
            "interval": "5s",
            "baseEjectionTime": "120s",
            "maxEjectionPercent": 70,
        },
        "connectionPool": {
            "http": {"http1MaxPendingRequests": 20, "maxRequestsPerConnection": 2},
            "tcp": {"maxConnections": 50},
        },
    },
)
#: The strictest level.
MAX_LEVEL = len(LEVELS) - 1


class ResilienceSpec(BaseModel):
    """What a user sets (annotations on the Service, or ``autopilot`` at start).

    Checked at workflow start: an invalid spec fails it at once, naming the field.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_error_rate: float = Field(
        default=5.0,
        ge=0,
        le=100,
        alias="maxErrorRate",
        description="5xx percent above which it degrades",
    )
    max_latency_p99_ms: float = Field(
        default=500.0,
        gt=0,
        le=600_000,
        alias="maxLatencyP99Ms",
        description="p99 above which it degrades",
    )
    recover_after: int = Field(
        default=3,
        ge=1,
        le=100,
        alias="recoverAfter",
        description="healthy readings in a row before a step back",
    )
    approval_above: int = Field(
        default=2,
        ge=0,
        le=MAX_LEVEL,
        alias="approvalAbove",
        description="levels above this one wait for `autopilot resilience approve`",
    )


class Change(BaseModel):
    """One level change, and why."""

    at: datetime
    from_level: int
    to_level: int
    reason: str = Field(max_length=512)
    approved_by: str | None = None


class ResilienceData(BaseModel):
    """What the machine remembers (``autopilot status`` shows it)."""

    level: int = Field(default=0, ge=0, le=MAX_LEVEL, description="the level in force")
    target_level: int | None = Field(default=None, description="the level being written")
    reason: str = Field(default="", description="why the current or pending change")
    breaching: list[str] = Field(default_factory=list, description="metrics over their bound")
    healthy_readings: int = Field(default=0, description="healthy readings in a row")
    last_values: dict[str, float | None] = Field(default_factory=dict)
    approved_by: str | None = None
    changes: list[Change] = Field(default_factory=list)


class ServiceSeen(Event):
    """The opted-in Service exists (created, changed, or listed again)."""


class ServiceGone(Event):
    """The Service was deleted, or it no longer carries the opt-in annotation."""


class ErrorRate(Reading):
    """Percent of the service's requests answered 5xx over the last 10 s (PromQL sense)."""


class LatencyP99(Reading):
    """The service's p99 request duration over the last 10 s, in ms (PromQL sense)."""


class LevelApplied(Event):
    """The worker wrote the level's DestinationRule (or removed it, for level 0)."""

    level: int = Field(ge=0, le=MAX_LEVEL)
    rule: str = Field(description="namespace/name of the DestinationRule")


class PolicyRemoved(Event):
    """The worker removed the operator's DestinationRule (the Service is gone)."""
