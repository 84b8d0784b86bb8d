"""The quarantine operator: isolate a compromised workload, keep the evidence, tell security.

One durable workflow per workload (ID ``quarantine/<namespace>/<name>``), usually started
by the first firing alert through the Alertmanager webhook::

    Detected ─SecurityAlert─▶ Isolated ─escalateAfter (4h) | /escalate | no policy─▶ Escalated
                                 │                                                      │
                                 ├─/release───▶ Released    (policy and label removed) ◀┤
                                 └─/remediate─▶ Remediated  (left for security)        ◀┘

``Isolated`` applies a DENY AuthorizationPolicy first (containment before anything else),
then snapshots the evidence, then labels the Deployment. If the policy cannot be applied the
machine escalates at once: a workload we could not isolate is what security must hear about
now. Further alerts and their resolutions are recorded but move nothing; only a human
releases a quarantine.

Guards and effects are pure; the workers live in ``activities/quarantine.py`` and are named
here, never imported.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow

from models.durations import format_duration
from models.errors import NON_RETRYABLE
from models.operator import CommandRequest, OperatorInput, OperatorStatus
from models.quarantine import (
    AlertRecord,
    AlertResolved,
    EvidenceRecorded,
    PolicyApplied,
    QuarantineData,
    QuarantineSpec,
    SecurityAlert,
    SecurityNotified,
)
from models.senses import Dedicated, Webhook
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

#: What a timer or the details see: spec and data, no particular event.
Q = Ctx[QuarantineSpec, QuarantineData]
E = TypeVar("E")
#: What a guard or effect sees for one trigger: ``On[SecurityAlert]``; mypy checks that the
#: trigger it is declared for carries that event.
On = Ctx[QuarantineSpec, QuarantineData, E]

# =============================================================================
# Workers (activities/quarantine.py), by name
# =============================================================================

apply_deny_policy = ActivityRef(
    "quarantine.apply_deny_policy",
    returns=PolicyApplied,
    timeout=timedelta(seconds=30),
    max_attempts=5,
    summary="DENY AuthorizationPolicy for the workload",
)
snapshot_evidence = ActivityRef(
    "quarantine.snapshot_evidence",
    returns=EvidenceRecorded,
    timeout=timedelta(seconds=30),
    summary="workload spec, labels, images and alert into a ConfigMap",
)
label_workload = ActivityRef(
    "quarantine.label_workload",
    timeout=timedelta(seconds=30),
    summary="label the Deployment autopilot.dev/quarantined=true",
)
notify_security = ActivityRef(
    "quarantine.notify_security",
    returns=SecurityNotified,
    timeout=timedelta(seconds=30),
    max_attempts=5,
    summary="POST to notifyUrl and a Kubernetes Event",
)
# Lifting a quarantine must happen: retried until it does (the failure shows in the UI).
remove_deny_policy = ActivityRef(
    "quarantine.remove_deny_policy",
    timeout=timedelta(seconds=30),
    max_attempts=0,
    maximum_retry_interval=timedelta(seconds=30),
    summary="delete the AuthorizationPolicy",
)
unlabel_workload = ActivityRef(
    "quarantine.unlabel_workload",
    timeout=timedelta(seconds=30),
    max_attempts=0,
    maximum_retry_interval=timedelta(seconds=30),
    summary="remove the quarantined label",
)

# =============================================================================
# Timer, guard and effects: pure functions of spec, data and event
# =============================================================================


def escalate_after(ctx: Q) -> timedelta:
    """``escalateAfter``, counted from when isolation began (a ``retry`` does not restart it)."""
    since = ctx.data.quarantined_at or ctx.now
    return max(timedelta(0), since + ctx.spec.escalate_after - ctx.now)


def isolation_failed(ctx: On[ActivityFailed]) -> bool:
    """ActivityFailed: the DENY policy could not be applied."""
    return ctx.event.activity == apply_deny_policy.name


def _record(data: QuarantineData, alert: SecurityAlert, now: datetime) -> list[AlertRecord]:
    record = AlertRecord(
        alertname=alert.alertname or "(unnamed alert)",
        severity=alert.severity,
        fingerprint=alert.fingerprint,
        summary=alert.summary,
        starts_at=alert.starts_at,
        received_at=now,
    )
    alerts = [*data.alerts, record]
    if len(alerts) > QuarantineData.MAX_ALERTS:  # keep the first one: it opened the quarantine
        alerts = [alerts[0], *alerts[-(QuarantineData.MAX_ALERTS - 1) :]]
    return alerts


def open_quarantine(ctx: On[SecurityAlert]) -> QuarantineData:
    """The first alert: remember it and when isolation began."""
    return ctx.data.model_copy(
        update={
            "alerts": _record(ctx.data, ctx.event, ctx.now),
            "alerts_received": ctx.data.alerts_received + 1,
            "quarantined_at": ctx.now,
        }
    )


def record_alert(ctx: On[SecurityAlert]) -> QuarantineData:
    """Another alert while quarantined: remember it, change nothing else."""
    return ctx.data.model_copy(
        update={
            "alerts": _record(ctx.data, ctx.event, ctx.now),
            "alerts_received": ctx.data.alerts_received + 1,
        }
    )


def record_resolution(ctx: On[AlertResolved]) -> QuarantineData:
    """An alert stopped firing: mark it resolved. Isolation stays until a human releases."""
    event = ctx.event
    alerts = list(ctx.data.alerts)
    for index in reversed(range(len(alerts))):
        alert = alerts[index]
        same = (event.fingerprint and alert.fingerprint == event.fingerprint) or (
            not event.fingerprint and alert.alertname == event.alertname
        )
        if same and alert.resolved_at is None:
            resolved_at = event.ends_at or ctx.now
            alerts[index] = alert.model_copy(update={"resolved_at": resolved_at})
            break
    return ctx.data.model_copy(update={"alerts": alerts})


def record_policy(ctx: On[PolicyApplied]) -> QuarantineData:
    """The policy is in place."""
    event = ctx.event
    return ctx.data.model_copy(update={"policy": event.name, "selector": dict(event.selector)})


def record_evidence(ctx: On[EvidenceRecorded]) -> QuarantineData:
    """The evidence ConfigMap is written."""
    event = ctx.event
    return ctx.data.model_copy(update={"evidence": event.config_map, "images": event.images})


def _escalate(ctx: Q, reason: str, problem: str | None = None) -> QuarantineData:
    problems = [*ctx.data.problems, problem] if problem else ctx.data.problems
    return ctx.data.model_copy(
        update={"escalated_at": ctx.now, "escalation_reason": reason, "problems": problems}
    )


def escalate_on_timer(ctx: On[Timeout]) -> QuarantineData:
    """Nobody released the workload within ``escalateAfter``."""
    return _escalate(ctx, f"still isolated after {format_duration(ctx.spec.escalate_after)}")


def escalate_on_command(ctx: On[CommandRequest]) -> QuarantineData:
    """A human escalated."""
    command = ctx.command
    by = command.by if command else "unknown"
    reason = f": {command.reason}" if command and command.reason else ""
    return _escalate(ctx, f"escalated by {by}{reason}")


def escalate_on_failure(ctx: On[ActivityFailed]) -> QuarantineData:
    """The DENY policy could not be applied: the workload is NOT isolated."""
    message = str(ctx.event.message).removeprefix(f"{NON_RETRYABLE}: ")  # the error type, not news
    problem = f"isolation failed: {message}"
    return _escalate(ctx, problem, problem)


def record_notification(ctx: On[SecurityNotified]) -> QuarantineData:
    """How security was told."""
    event = ctx.event
    told = []
    if event.posted_to:
        told.append(f"POST {event.posted_to} → {event.status}")
    if event.kubernetes_event:
        told.append(f"Kubernetes Event {event.kubernetes_event}")
    return ctx.data.model_copy(update={"notified": "; ".join(told) or "recorded"})


def record_close(ctx: On[CommandRequest]) -> QuarantineData:
    """Who released or remediated, and why."""
    command = ctx.command
    return ctx.data.model_copy(
        update={
            "closed_by": command.by if command else None,
            "closed_reason": command.reason if command else None,
        }
    )


def details(ctx: Q) -> str:
    """Markdown for the Temporal UI: the alert, since when isolated, what is in place."""
    data = ctx.data
    first = data.first_alert
    if first is None:
        return "waiting for a SecurityAlert"
    severity = f" ({first.severity})" if first.severity else ""
    lines = [f"alert: **{first.alertname}**{severity}"]
    if first.summary:
        lines.append(f"> {first.summary}")
    if data.quarantined_at is not None:
        lines.append(f"isolated since: {data.quarantined_at.isoformat(timespec='seconds')}")
    if data.policy:
        selector = ", ".join(f"{k}={v}" for k, v in sorted(data.selector.items()))
        lines.append(f"policy: `{data.policy}` (DENY `{selector}`)")
    if data.evidence:
        lines.append(f"evidence: ConfigMap `{data.evidence}`")
    if data.alerts_received > 1:
        lines.append(f"alerts received: {data.alerts_received}")
    if data.alerts and not data.firing:
        lines.append("every alert has resolved; the workload stays isolated until released")
    if data.escalated_at is not None:
        lines.append(
            f"escalated {data.escalated_at.isoformat(timespec='seconds')}: {data.escalation_reason}"
        )
    if data.notified:
        lines.append(f"notified: {data.notified}")
    lines += [f"problem: {problem}" for problem in data.problems]
    if data.closed_by:
        reason = f": {data.closed_reason}" if data.closed_reason else ""
        lines.append(f"closed by {data.closed_by}{reason}")
    return "\n\n".join(lines)


# =============================================================================
# The machine
# =============================================================================

quarantine = Operator(
    "quarantine",
    spec=QuarantineSpec,
    data=QuarantineData,
    initial="Detected",
    events=[SecurityAlert, AlertResolved],
    senses=[
        # Alertmanager's webhook: a firing alert that names the workload, and its end.
        Dedicated("alertmanager", sends=(SecurityAlert, AlertResolved)),
        # Any other tool (a SIEM, a scanner) through the generic, signed endpoint.
        Webhook(sends=(SecurityAlert, AlertResolved)),
    ],
    details=details,
    description=(
        "Isolates a compromised workload: a firing security alert puts a DENY "
        "AuthorizationPolicy in front of it, keeps the evidence in a ConfigMap and labels "
        "the Deployment; security is notified if nobody releases it within escalateAfter."
    ),
)

quarantine.state("Detected", settled=True, doc="waiting for the first SecurityAlert")
quarantine.state(
    "Isolated",
    run=[apply_deny_policy, snapshot_evidence, label_workload],
    after=escalate_after,
    settled=True,
    doc="every request to the workload is denied (403)",
)
quarantine.state(
    "Escalated",
    run=[notify_security],
    settled=True,
    doc="security was notified; still isolated, waiting for release or remediate",
)
quarantine.state(
    "Released",
    run=[remove_deny_policy, unlabel_workload],
    final=True,
    doc="policy and label removed; traffic flows again",
)
quarantine.state(
    "Remediated",
    final=True,
    doc="security took over; policy, label and evidence stay in place",
)

# -- Detected → Isolated ------------------------------------------------------

quarantine.on("Detected", SecurityAlert, go="Isolated", do=open_quarantine)

# -- while quarantined: record, never move on an alert ------------------------

quarantine.on(["Isolated", "Escalated"], SecurityAlert, go=None, do=record_alert)
quarantine.on(ANY, AlertResolved, go=None, do=record_resolution)
quarantine.on("Isolated", PolicyApplied, go=None, do=record_policy)
quarantine.on("Isolated", EvidenceRecorded, go=None, do=record_evidence)
quarantine.on("Escalated", SecurityNotified, go=None, do=record_notification)

# -- Isolated → Escalated -----------------------------------------------------

quarantine.on("Isolated", Timeout, go="Escalated", do=escalate_on_timer)
quarantine.on(
    "Isolated", ActivityFailed, go="Escalated", when=isolation_failed, do=escalate_on_failure
)
quarantine.on(
    "Isolated", Command("escalate", "notify security now"), go="Escalated", do=escalate_on_command
)

# -- human decisions ----------------------------------------------------------

quarantine.on(
    ["Isolated", "Escalated"],
    Command("release", "lift the quarantine"),
    go="Released",
    do=record_close,
)
quarantine.on(
    ["Isolated", "Escalated"],
    Command("remediate", "close it; security owns the rest"),
    go="Remediated",
    do=record_close,
)

quarantine.check()


@register
# Auto-upgrade: fixes reach a running quarantine; its changes keep the replay discipline.
@workflow.defn(name="quarantine", versioning_behavior=auto_upgrade())
class QuarantineWorkflow(OperatorWorkflow):
    """One quarantine per workload; ID ``quarantine/<namespace>/<name>``."""

    operator = quarantine

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the quarantine until Released or Remediated."""
        return await self.run_operator(input)
