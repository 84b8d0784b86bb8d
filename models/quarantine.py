"""The quarantine operator's contract: its spec, its memory and the events it reacts to.

Why here and not in the workflow: the Alertmanager webhook (a watcher) produces
:class:`SecurityAlert` and :class:`AlertResolved`, the workers return the other events, the
workflow and the CLI read the spec and data. Pydantic only, so every layer can import it.

The spec is optional as a whole: the webhook starts a quarantine with ``spec: {}``, so every
field has a default that is safe for an alert nobody configured.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from models.durations import Duration
from models.events import Event
from models.gitops_modes import GitOpsMode
from models.limits import (
    DNS_LABEL,
    LABEL_KEY,
    LABEL_VALUE,
    MAX_ENTRIES,
    MAX_LABEL,
    MAX_LABEL_KEY,
    MAX_NAME,
    MAX_URL,
)
from models.operator import StepInput, Target

# =============================================================================
# Names of what the operator writes (shared by workers, details and docs)
# =============================================================================


def _suffixed(name: str, suffix: str) -> str:
    """``<name><suffix>``, shortened with a hash when it would pass 253 characters."""
    full = f"{name}{suffix}"
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(suffix) - 9]}-{digest}{suffix}"


def policy_name(target: Target) -> str:
    """The AuthorizationPolicy that isolates ``target``: ``<name>-quarantine``."""
    return _suffixed(target.name, "-quarantine")


def evidence_name(target: Target) -> str:
    """The ConfigMap that keeps the evidence: ``<name>-quarantine-evidence``."""
    return _suffixed(target.name, "-quarantine-evidence")


# =============================================================================
# The spec
# =============================================================================


class QuarantineGitOps(BaseModel):
    """How the quarantine's changes reach git (docs/gitops.md, "Modes")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: GitOpsMode = Field(
        default="direct-then-record",
        description=(
            "direct: the cluster only; direct-then-record: isolate at once, record it by pull "
            "request, release by pull request; pull-request: the same for a quarantine, "
            "whose containment never waits for a review. A worker with no GitOps repository "
            "behaves as direct"
        ),
    )


class QuarantineSpec(BaseModel):
    """How to isolate one workload and whom to tell. Every field may be left out.

    Written in camelCase (``escalateAfter``), like every Autopilot spec.
    """

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    escalate_after: Duration = Field(
        default=timedelta(hours=4),
        description="how long the workload stays Isolated before security is notified",
    )
    notify_url: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description=(
            "HTTP(S) endpoint that receives a JSON POST on escalation; unset: the worker's "
            "AUTOPILOT_QUARANTINE_NOTIFY_URL, else a Kubernetes Event only"
        ),
    )
    selector: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_ENTRIES,
        description=(
            "pod labels to isolate; unset: the Deployment's selector (or the Service's, when "
            "the alert names a Service)"
        ),
    )
    exempt_namespaces: list[Annotated[str, Field(max_length=MAX_LABEL)]] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="namespaces still allowed to reach the workload, e.g. a forensics namespace",
    )
    gitops: QuarantineGitOps = Field(
        default_factory=QuarantineGitOps,
        description="whether isolation and release are recorded in, and go through, git",
    )

    @field_validator("escalate_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("notify_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("selector")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(
                "must name at least one label; an empty selector would match every pod"
            )
        for key, label in value.items():
            if len(key) > MAX_LABEL_KEY or len(label) > MAX_LABEL:
                raise ValueError(
                    f"a label key may be at most {MAX_LABEL_KEY} characters and a value "
                    f"at most {MAX_LABEL}"
                )
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(label):
                raise ValueError(f"{key}={label!r} is not a valid label selector")
        return value

    @field_validator("exempt_namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for name in value:
            if not DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a namespace name")
        return value


# =============================================================================
# Events (what the webhook sends, what the workers return)
# =============================================================================


class QuarantineEvent(Event):
    """Base of quarantine events; the type name in an EventEnvelope is the class name."""


class _Alert(QuarantineEvent):
    """The fields ``watchers/webhooks/alertmanager.py`` puts in an alert's payload.

    Unknown fields are ignored, not refused: a security alert must never be dropped because
    its sender learned a new field.
    """

    model_config = ConfigDict(extra="ignore")

    alertname: str = ""
    severity: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    fingerprint: str = ""
    generator_url: str = ""
    receiver: str = ""

    @property
    def summary(self) -> str:
        """The alert's ``summary`` (or ``description``) annotation, if any."""
        return self.annotations.get("summary") or self.annotations.get("description") or ""


class SecurityAlert(_Alert):
    """A firing alert about the workload: the first one isolates it."""


class AlertResolved(_Alert):
    """Alertmanager says an alert stopped firing. Informational: the workload stays isolated."""

    ends_at: datetime | None = None


class PolicyApplied(QuarantineEvent):
    """``apply_deny_policy`` wrote (or found) the DENY AuthorizationPolicy."""

    name: str
    selector: dict[str, str]
    selected_by: Literal["spec", "deployment", "service"]
    changed: bool = Field(description="False when the policy was already as wanted")


class EvidenceRecorded(QuarantineEvent):
    """``snapshot_evidence`` wrote the evidence ConfigMap."""

    config_map: str
    images: list[str] = Field(default_factory=list)
    workload_found: bool = True


class SecurityNotified(QuarantineEvent):
    """``notify_security`` told the security team (or recorded that it had no one to tell)."""

    posted_to: str | None = Field(default=None, description="the notify URL, when one was set")
    status: int | None = Field(default=None, description="HTTP status of the POST")
    kubernetes_event: str | None = Field(default=None, description="namespace/name of the Event")


#: What a GitOps worker of the quarantine did: a pull request opened (or found on a retry),
#: nothing to change in git, or no repository configured on the worker.
GitOutcome = Literal["opened", "found", "unchanged", "not-configured"]


class IsolationRecorded(QuarantineEvent):
    """``record_isolation`` opened the pull request that writes the DENY policy into git."""

    outcome: GitOutcome
    number: int | None = Field(default=None, ge=1)
    url: str | None = Field(default=None, max_length=MAX_URL)
    branch: str | None = Field(default=None, max_length=4 * MAX_NAME)


class ReleaseProposed(QuarantineEvent):
    """``propose_release`` opened the pull request that removes the policy's file."""

    outcome: GitOutcome
    number: int | None = Field(default=None, ge=1)
    url: str | None = Field(default=None, max_length=MAX_URL)
    branch: str | None = Field(default=None, max_length=4 * MAX_NAME)
    poll_interval_s: float = Field(
        default=30.0, ge=0.1, le=3600, description="the worker's gitops.poll_interval_s"
    )


class ReleaseApplied(QuarantineEvent):
    """``await_release_applied`` saw the policy gone: the GitOps engine applied the merge."""

    policy: str
    waited_s: float = Field(ge=0, description="seconds from the wait's start until it was gone")


# =============================================================================
# The machine's memory
# =============================================================================


class AlertRecord(BaseModel):
    """One alert the quarantine has seen, newest last."""

    alertname: str
    severity: str = ""
    fingerprint: str = ""
    summary: str = ""
    starts_at: datetime | None = None
    received_at: datetime
    resolved_at: datetime | None = None


PullRequestStatus = Literal["open", "merged", "closed", "unchanged", "failed"]


class QuarantineGit(BaseModel):
    """What git knows of this quarantine: the pull requests that record and release it."""

    configured: bool = Field(default=True, description="False: no repository on the worker")
    record_pr: int | None = Field(default=None, description="the PR recording the isolation")
    record_url: str | None = None
    record_state: PullRequestStatus | None = None
    release_pr: int | None = Field(default=None, description="the PR removing the policy")
    release_url: str | None = None
    release_state: PullRequestStatus | None = None
    release_by: str | None = Field(default=None, description="who asked for the release")
    release_reason: str | None = None
    release_merge_sha: str | None = None
    release_merged_at: datetime | None = None
    poll_interval_s: float = Field(default=30.0, ge=0.1, le=3600)
    polls: int = Field(default=0, description="reads of the release pull request while open")
    polled_at: datetime | None = Field(default=None, description="the last of those reads")
    notes: list[str] = Field(default_factory=list, description="what happened in git, newest last")

    MAX_NOTES: ClassVar[int] = 20


class QuarantineData(BaseModel):
    """What the quarantine workflow remembers (shown by ``autopilot status``)."""

    alerts: list[AlertRecord] = Field(default_factory=list)
    alerts_received: int = Field(default=0, description="SecurityAlerts handled, repeats included")
    quarantined_at: datetime | None = Field(default=None, description="when isolation began")
    policy: str | None = Field(default=None, description="the AuthorizationPolicy in place")
    selector: dict[str, str] = Field(default_factory=dict, description="the pods it denies")
    evidence: str | None = Field(default=None, description="the evidence ConfigMap")
    images: list[str] = Field(default_factory=list, description="images at the time of the alert")
    problems: list[str] = Field(default_factory=list, description="workers that failed")
    escalated_at: datetime | None = None
    escalation_reason: str | None = None
    notified: str | None = Field(default=None, description="how security was told")
    closed_by: str | None = Field(default=None, description="who released or remediated")
    closed_reason: str | None = None
    git: QuarantineGit | None = Field(
        default=None, description="the record and release pull requests (GitOps modes)"
    )

    MAX_ALERTS: ClassVar[int] = 20

    @property
    def first_alert(self) -> AlertRecord | None:
        """The alert that opened the quarantine (kept even when the list is trimmed)."""
        return self.alerts[0] if self.alerts else None

    @property
    def firing(self) -> list[AlertRecord]:
        """Alerts not resolved yet."""
        return [a for a in self.alerts if a.resolved_at is None]


#: The one argument of every quarantine activity.
QuarantineStep = StepInput[QuarantineSpec, QuarantineData]
