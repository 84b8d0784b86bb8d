"""What a rollout tells chat tools (``analysis.alerts``): Flagger's alerts, decided purely.

The workflow only decides *what* to send; ``canary.send_alert`` (``activities/canary/
alerts.py``) finds the ``AlertProvider``, its Secret, and posts. Which transitions alert,
with Flagger's messages and severities:

* the first run created the primary: info, "New Deployment detected, initialization
  completed." (with Flagger's metadata: target, threshold, deadline, routing);
* a new revision starts its rollout: info, "New revision detected, progressing canary
  analysis." (with the metadata);
* entering a gate: warn, "Canary is waiting for approval." (start), "Canary traffic increase
  is waiting for approval." (step), "Canary promotion is waiting for approval.";
* a rollback webhook said yes: warn, "Rolling back manual webhook invoked";
* failed checks reached the threshold: error, "Failed checks threshold reached N";
* a workload not ready by the deadline: error, "Progress deadline exceeded ...";
* the promoted primary not ready: error, "Promotion failed, primary not ready: ...";
* a worker failed and the rollout rolled back or failed: error, "Canary failed: ...";
* aborted (a human, or the target deleted): warn, "Canary aborted: ..." (Autopilot's);
* promoted: info, "Canary analysis completed successfully, promotion finished." (or "...
  was skipped, ..." with ``skipAnalysis``).

Each alert's ``severity`` filters (:func:`models.alerts.reaches`). A gate's alert is muted
when the gate waits only for confirm webhooks that all say ``muteAlert`` (Flagger's flag).
The dedupe key is the handled event's ID (stable across replays and retries); a gate's is its
revision, attempt, gate and step, so the gate visited again every interval (the analysis
goes on meanwhile) alerts once.
"""

from datetime import timedelta

from models import canary as m
from models.alerts import AlertField, AlertSeverity, SendAlert, reaches
from workflows.canary.gates import GATES
from workflows.canary.guards import C
from workflows.engine import ActivityRef, Occasion

#: The worker that posts one alert: quick, bounded retries (it dedupes by key), never waited
#: for by the rollout.
send_alert = ActivityRef(
    "canary.send_alert",
    timeout=timedelta(seconds=30),
    max_attempts=4,
    initial_retry_interval=timedelta(seconds=1),
    summary="chat alert",
)

_GATE_MESSAGES = {
    "Waiting": "Canary is waiting for approval.",
    "AwaitingStep": "Canary traffic increase is waiting for approval.",
    "AwaitingPromotion": "Canary promotion is waiting for approval.",
}


def metadata(ctx: C, occasion: Occasion) -> list[AlertField]:
    """Flagger's alert metadata: target, failed checks threshold, deadline, routing."""
    analysis = ctx.spec.analysis
    target = occasion.target
    fields = [
        AlertField(name="Target", value=f"Deployment/{target.name}.{target.namespace}"),
        AlertField(name="Failed checks threshold", value=str(analysis.threshold)),
        AlertField(name="Progress deadline", value=f"{ctx.spec.progress_deadline_seconds}s"),
    ]
    top = analysis.max_weight or 100
    if analysis.step_weights:
        steps = ",".join(str(weight) for weight in analysis.step_weights)
        routing = f"Weight steps: {steps} max: {top}"
    elif analysis.step_weight is not None:
        routing = f"Weight step: {analysis.step_weight} max: {top}"
    else:
        routing = "Blue/Green"
    return [*fields, AlertField(name="Traffic routing", value=routing)]


def _gate_muted(state: str, ctx: C) -> bool:
    """The gate waits only for confirm webhooks, and every one of them mutes its alert."""
    gate = GATES[state]
    hooks = ctx.spec.analysis.hooks(gate.hooks)
    return not gate.needs_approval(ctx.spec) and bool(hooks) and all(h.mute_alert for h in hooks)


def _failure(before: C, after: C) -> tuple[AlertSeverity, str] | None:
    """The alert of a rollout that goes wrong (rolled back, failed, aborted), if any."""
    event, data, target = after.event, after.data, after.state
    if target == "Aborted" and before.state != "Aborted":
        return AlertSeverity.WARN, f"Canary aborted: {data.failure or 'aborted'}"
    if target not in ("RollingBack", "Failed") or before.state == "RollingBack":
        return None
    if getattr(event, "rollback_requested", False):
        return AlertSeverity.WARN, "Rolling back manual webhook invoked"
    if target == "Failed" and before.state == "Promoting":
        return AlertSeverity.ERROR, f"Promotion failed, primary not ready: {data.failure}"
    if target == "Failed" and before.state == "Initializing" and isinstance(event, m.Initialized):
        return None  # a rejected revision refused again: told as a Kubernetes Event only
    threshold = after.spec.analysis.threshold
    if data.failed_checks >= threshold and data.failed_checks > before.data.failed_checks:
        return AlertSeverity.ERROR, f"Failed checks threshold reached {data.failed_checks}"
    if before.data.failed_checks >= threshold:
        return None  # the threshold's alert told this failure already (seen twice under load)
    if data.failure and "progressDeadlineSeconds" in data.failure:
        return AlertSeverity.ERROR, f"Progress deadline exceeded {data.failure}"
    return AlertSeverity.ERROR, f"Canary failed: {data.failure or 'rolled back'}"


def _what(before: C, after: C, occasion: Occasion) -> tuple[AlertSeverity, str, str, bool] | None:
    """``(severity, message, key, with metadata)`` of this transition, or None."""
    event, source, target, data = after.event, before.state, after.state, after.data
    key = occasion.event_id
    if isinstance(event, m.Initialized) and source == "Initializing":
        if target in ("Queued", "Waiting", "Starting", "Promoting"):
            return (
                AlertSeverity.INFO,
                "New revision detected, progressing canary analysis.",
                key,
                True,
            )
        if target == "Succeeded" and event.bootstrapped:
            message = "New Deployment detected, initialization completed."
            return AlertSeverity.INFO, message, key, True
    if target == "Succeeded" and source == "Finalising":
        if after.spec.skip_analysis:
            return (
                AlertSeverity.INFO,
                "Canary analysis was skipped, promotion finished.",
                key,
                False,
            )
        message = "Canary analysis completed successfully, promotion finished."
        return AlertSeverity.INFO, message, key, False
    failure = _failure(before, after)
    if failure is not None:
        severity, message = failure
        return severity, message, key, False
    if target in GATES and source != target and not _gate_muted(target, after):
        gate_key = f"gate:{data.revision}:{data.attempt}:{target}:{data.step}"
        return AlertSeverity.WARN, _GATE_MESSAGES[target], gate_key, False
    return None


def alerts(before: C, after: C, occasion: Occasion) -> list[SendAlert]:
    """The alerts one transition sends: one request per alert whose severity it reaches."""
    subscribed = after.spec.analysis.alerts
    if not subscribed:
        return []
    what = _what(before, after, occasion)
    if what is None:
        return []
    severity, message, key, with_metadata = what
    fields = metadata(after, occasion) if with_metadata else []
    return [
        SendAlert(
            workflow_id=occasion.workflow_id,
            target=occasion.target,
            key=f"{key}:{alert.name}",
            alert=alert,
            severity=severity,
            message=message,
            fields=fields,
        )
        for alert in subscribed
        if reaches(alert.severity, severity)
    ]
