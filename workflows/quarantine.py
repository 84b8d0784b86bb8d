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

**GitOps** (``spec.gitops.mode``, docs/gitops.md): in ``direct-then-record`` (the default)
and ``pull-request``, ``Isolated`` also opens a pull request recording the policy as applied
(containment never waits for a review), and ``release`` goes through git::

    Isolated|Escalated ─/release─▶ Releasing ─PR opened─▶ ReleaseInReview ─merged─▶ ReleaseApplying
                                       │                   │  ▲ poll timer          │ policy pruned
                                       │ nothing in git    │  └─┘                   ▼
                                       └──────────────────────────────────────▶ Released
                        ReleaseInReview ─closed unmerged─▶ Isolated (Escalated if it was)

The merge arrives by webhook, or by the poll when the webhook was lost. A worker with no
GitOps repository says so and the machine behaves as in mode ``direct``.

Guards and effects are pure; the workers live in ``activities/quarantine.py`` and
``activities/quarantine_git.py`` and are named here, never imported.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow

from models.durations import format_duration
from models.errors import NON_RETRYABLE
from models.gitops_modes import PullRequestClosed, PullRequestMerged, PullRequestPolled
from models.operator import CommandRequest, OperatorInput, OperatorStatus
from models.quarantine import (
    AlertRecord,
    AlertResolved,
    EvidenceRecorded,
    IsolationRecorded,
    PolicyApplied,
    QuarantineData,
    QuarantineGit,
    QuarantineSpec,
    ReleaseApplied,
    ReleaseProposed,
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

#: Temporal patch: quarantines opened before the GitOps modes existed replay without them.
GITOPS_PATCH = "quarantine-gitops"


def records_isolation(ctx: Q) -> bool:
    """Isolated: record the policy in git once, unless the mode is ``direct``.

    Evaluated as the state is entered; a history recorded before the modes existed has no
    marker of the patch, so its replay runs no such worker.
    """
    if ctx.spec.gitops.mode == "direct" or ctx.data.git is not None:
        return False
    return not workflow.in_workflow() or workflow.patched(GITOPS_PATCH)


# =============================================================================
# Workers (activities/quarantine.py, activities/quarantine_git.py), by name
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
# The GitOps workers (activities/quarantine_git.py): each says "not-configured" when the
# worker has no repository, and the machine then behaves as in mode direct.
record_isolation = ActivityRef(
    "quarantine.record_isolation",
    returns=IsolationRecorded,
    timeout=timedelta(seconds=120),
    max_attempts=5,
    summary="pull request recording the DENY policy in git",
    when=records_isolation,
)
propose_release = ActivityRef(
    "quarantine.propose_release",
    returns=ReleaseProposed,
    timeout=timedelta(seconds=120),
    max_attempts=10,
    maximum_retry_interval=timedelta(seconds=30),
    summary="pull request removing the DENY policy from git",
)
# One read per entry of ReleaseInReview; the state's timer (the worker's poll interval)
# enters it again. A read, not a long wait, so a webhook's merge is handled at once.
poll_release = ActivityRef(
    "quarantine.poll_release",
    returns=PullRequestPolled,
    timeout=timedelta(seconds=60),
    max_attempts=3,
    summary="read the release pull request (fallback for lost webhooks)",
)
await_release_applied = ActivityRef(
    "quarantine.await_release_applied",
    returns=ReleaseApplied,
    timeout=timedelta(seconds=3700),  # above the longest gitops.apply_timeout_s (3600)
    heartbeat_timeout=timedelta(seconds=30),
    max_attempts=3,
    summary="wait until the GitOps engine pruned the DENY policy",
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


# -- GitOps: record the isolation, release through a pull request -----------------------


def _git(data: QuarantineData) -> QuarantineGit:
    return data.git or QuarantineGit()


def _noted(git: QuarantineGit, note: str, **update: object) -> QuarantineGit:
    notes = [*git.notes, note][-QuarantineGit.MAX_NOTES :]
    return git.model_copy(update={**update, "notes": notes})


def _who(event: PullRequestMerged | PullRequestClosed) -> str:
    return f" by {event.sender}" if event.sender else ""


def recording_failed(ctx: On[ActivityFailed]) -> bool:
    """ActivityFailed: the pull request recording the isolation could not be opened."""
    return ctx.event.activity == record_isolation.name


def record_isolation_pr(ctx: On[IsolationRecorded]) -> QuarantineData:
    """Remember the record pull request, or that git is not configured (then: direct)."""
    event = ctx.event
    if event.outcome == "not-configured":
        git = _noted(
            QuarantineGit(configured=False),
            "GitOps is not configured on the worker: isolation and release are direct",
        )
    elif event.outcome == "unchanged":
        git = _noted(QuarantineGit(record_state="unchanged"), "git already holds the DENY policy")
    else:
        git = _noted(
            QuarantineGit(record_pr=event.number, record_url=event.url, record_state="open"),
            f"pull request #{event.number} records the isolation: {event.url}",
        )
    return ctx.data.model_copy(update={"git": git})


def record_recording_failure(ctx: On[ActivityFailed]) -> QuarantineData:
    """The policy is in place, but git does not know it: a problem, not a failed isolation."""
    message = str(ctx.event.message).removeprefix(f"{NON_RETRYABLE}: ")
    problem = f"git does not record the isolation: {message}"
    git = _noted(QuarantineGit(record_state="failed"), problem)
    return ctx.data.model_copy(update={"git": git, "problems": [*ctx.data.problems, problem]})


def is_record_pr(ctx: On[PullRequestMerged | PullRequestClosed]) -> bool:
    """The webhook's pull request is the one recording the isolation."""
    return ctx.data.git is not None and ctx.event.number == ctx.data.git.record_pr


def record_pr_merged(ctx: On[PullRequestMerged]) -> QuarantineData:
    """Git now holds the policy; the cluster already did, so nothing changes there."""
    git = _noted(
        _git(ctx.data),
        f"pull request #{ctx.event.number} merged{_who(ctx.event)}: git records the isolation",
        record_state="merged",
    )
    return ctx.data.model_copy(update={"git": git})


def record_pr_closed(ctx: On[PullRequestClosed]) -> QuarantineData:
    """The record was refused: the workload stays isolated, but git does not say so."""
    problem = (
        f"git does not record the isolation: pull request #{ctx.event.number} was closed "
        f"unmerged{_who(ctx.event)}"
    )
    git = _noted(_git(ctx.data), problem, record_state="closed")
    return ctx.data.model_copy(update={"git": git, "problems": [*ctx.data.problems, problem]})


def releases_through_git(ctx: On[CommandRequest]) -> bool:
    """release: through a pull request when git was configured and the mode is not direct.

    Reads only spec and data (a command's validator evaluates it), so a quarantine opened
    before the modes existed, which has no ``git``, releases directly as it always did.
    """
    git = ctx.data.git
    return ctx.spec.gitops.mode != "direct" and git is not None and git.configured


def request_release(ctx: On[CommandRequest]) -> QuarantineData:
    """Who asked for the release, and why; the pull request comes next."""
    command = ctx.command
    git = _git(ctx.data).model_copy(
        update={
            "release_by": command.by if command else None,
            "release_reason": command.reason if command else None,
            "release_pr": None,
            "release_url": None,
            "release_state": None,
            "release_merge_sha": None,
            "release_merged_at": None,
        }
    )
    return ctx.data.model_copy(update={"git": git})


def release_pr_opened(ctx: On[ReleaseProposed]) -> bool:
    """ReleaseProposed: there is a pull request to wait for."""
    return ctx.event.outcome in ("opened", "found")


def record_release_pr(ctx: On[ReleaseProposed]) -> QuarantineData:
    """The release pull request: waited on, polled every ``poll_interval_s``."""
    event = ctx.event
    git = _noted(
        _git(ctx.data),
        f"pull request #{event.number} releases the quarantine: {event.url}",
        release_pr=event.number,
        release_url=event.url,
        release_state="open",
        poll_interval_s=event.poll_interval_s,
    )
    return ctx.data.model_copy(update={"git": git})


def release_directly(ctx: On[ReleaseProposed]) -> QuarantineData:
    """Git has nothing to remove (the policy never reached it) or is not configured."""
    why = (
        "GitOps is not configured on the worker"
        if ctx.event.outcome == "not-configured"
        else "git does not hold the DENY policy"
    )
    git = _noted(_git(ctx.data), f"{why}: the policy is removed directly")
    return _closed_by_release(ctx.data.model_copy(update={"git": git}))


def _closed_by_release(data: QuarantineData) -> QuarantineData:
    git = _git(data)
    return data.model_copy(
        update={"closed_by": git.release_by, "closed_reason": git.release_reason}
    )


def poll_interval(ctx: Q) -> timedelta:
    """How long ReleaseInReview waits before reading its pull request again."""
    return timedelta(seconds=_git(ctx.data).poll_interval_s)


def is_release_pr(ctx: On[PullRequestMerged | PullRequestClosed | PullRequestPolled]) -> bool:
    """The pull request is the release's (not the record's, nor an older one)."""
    return ctx.data.git is not None and ctx.event.number == ctx.data.git.release_pr


def polled_merged(ctx: On[PullRequestPolled]) -> bool:
    """The poll found the release pull request merged."""
    return is_release_pr(ctx) and ctx.event.state == "merged"


def polled_closed(ctx: On[PullRequestPolled]) -> bool:
    """The poll found the release pull request closed unmerged."""
    return is_release_pr(ctx) and ctx.event.state == "closed"


def polled_closed_escalated(ctx: On[PullRequestPolled]) -> bool:
    """Closed unmerged, and security had been notified: back to Escalated."""
    return polled_closed(ctx) and ctx.data.escalated_at is not None


def closed_escalated(ctx: On[PullRequestClosed]) -> bool:
    """The release pull request closed unmerged, and security had been notified."""
    return is_release_pr(ctx) and ctx.data.escalated_at is not None


def _merged(ctx: Q, number: int, sha: str | None, how: str) -> QuarantineData:
    git = _noted(
        _git(ctx.data),
        f"pull request #{number} merged{how}; waiting for the GitOps engine to prune the policy",
        release_state="merged",
        release_merge_sha=sha,
        release_merged_at=ctx.now,
    )
    return ctx.data.model_copy(update={"git": git})


def release_merged(ctx: On[PullRequestMerged]) -> QuarantineData:
    """The webhook says the release was merged."""
    event = ctx.event
    return _merged(ctx, event.number, event.merge_commit_sha, _who(event))


def release_merged_polled(ctx: On[PullRequestPolled]) -> QuarantineData:
    """The poll found the release merged (its webhook was lost, or is late)."""
    return _merged(ctx, ctx.event.number, ctx.event.merge_sha, " (seen by polling)")


def _refused(ctx: Q, number: int, how: str) -> QuarantineData:
    git = _git(ctx.data)
    by = f" (asked by {git.release_by})" if git.release_by else ""
    note = f"release refused: pull request #{number} was closed unmerged{how}{by}; still isolated"
    return ctx.data.model_copy(update={"git": _noted(git, note, release_state="closed")})


def release_refused(ctx: On[PullRequestClosed]) -> QuarantineData:
    """The webhook says the release pull request was closed unmerged: stay isolated."""
    return _refused(ctx, ctx.event.number, _who(ctx.event))


def release_refused_polled(ctx: On[PullRequestPolled]) -> QuarantineData:
    """The poll found the release pull request closed unmerged: stay isolated."""
    return _refused(ctx, ctx.event.number, " (seen by polling)")


def record_poll(ctx: On[PullRequestPolled]) -> QuarantineData:
    """The release pull request is still open: count the read (status shows when)."""
    git = _git(ctx.data)
    git = git.model_copy(update={"polls": git.polls + 1, "polled_at": ctx.now})
    return ctx.data.model_copy(update={"git": git})


def release_applied(ctx: On[ReleaseApplied]) -> QuarantineData:
    """The cluster shows the merge: the policy is gone."""
    git = _noted(
        _git(ctx.data),
        f"the GitOps engine pruned {ctx.event.policy} "
        f"({ctx.event.waited_s:.0f}s after the wait began)",
    )
    return _closed_by_release(ctx.data.model_copy(update={"git": git}))


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
    if data.git is not None:
        lines.append(f"git: {data.git.notes[-1]}" if data.git.notes else "git: nothing yet")
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
        # GitHub's webhook: the record and release pull requests merged or closed.
        Dedicated("github", sends=(PullRequestMerged, PullRequestClosed)),
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
    run=[apply_deny_policy, snapshot_evidence, label_workload, record_isolation],
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
    "Releasing",
    run=[propose_release],
    doc="opening the pull request that removes the policy from git; still isolated",
)
quarantine.state(
    "ReleaseInReview",
    run=[poll_release],
    after=poll_interval,
    settled=True,
    doc="still isolated; waiting for the release pull request to be merged or closed",
)
quarantine.state(
    "ReleaseApplying",
    run=[await_release_applied],
    doc="merged; waiting for the GitOps engine to prune the policy",
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

# -- git: the record of the isolation ----------------------------------------

quarantine.on("Isolated", IsolationRecorded, go=None, do=record_isolation_pr)
quarantine.on(
    "Isolated", ActivityFailed, go=None, when=recording_failed, do=record_recording_failure
)
quarantine.on(ANY, PullRequestMerged, go=None, when=is_record_pr, do=record_pr_merged)
quarantine.on(ANY, PullRequestClosed, go=None, when=is_record_pr, do=record_pr_closed)

# -- human decisions ----------------------------------------------------------

release = Command("release", "lift the quarantine")
quarantine.on(
    ["Isolated", "Escalated"],
    release,
    go="Releasing",
    when=releases_through_git,
    do=request_release,
)
quarantine.on(["Isolated", "Escalated"], release, go="Released", do=record_close)

# -- release through git: pull request, review, the GitOps engine's apply -----

quarantine.on(
    "Releasing", ReleaseProposed, go="ReleaseInReview", when=release_pr_opened, do=record_release_pr
)
quarantine.on("Releasing", ReleaseProposed, go="Released", do=release_directly)
quarantine.on(
    "ReleaseInReview",
    PullRequestMerged,
    go="ReleaseApplying",
    when=is_release_pr,
    do=release_merged,
)
quarantine.on(
    "ReleaseInReview",
    PullRequestPolled,
    go="ReleaseApplying",
    when=polled_merged,
    do=release_merged_polled,
)
quarantine.on(
    "ReleaseInReview", PullRequestClosed, go="Escalated", when=closed_escalated, do=release_refused
)
quarantine.on(
    "ReleaseInReview", PullRequestClosed, go="Isolated", when=is_release_pr, do=release_refused
)
quarantine.on(
    "ReleaseInReview",
    PullRequestPolled,
    go="Escalated",
    when=polled_closed_escalated,
    do=release_refused_polled,
)
quarantine.on(
    "ReleaseInReview",
    PullRequestPolled,
    go="Isolated",
    when=polled_closed,
    do=release_refused_polled,
)
quarantine.on("ReleaseInReview", PullRequestPolled, go=None, when=is_release_pr, do=record_poll)
quarantine.on("ReleaseInReview", Timeout, go="ReleaseInReview", doc="read the pull request again")
quarantine.on("ReleaseApplying", ReleaseApplied, go="Released", do=release_applied)
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
