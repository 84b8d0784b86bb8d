"""Stand-ins for the quarantine workers, registered under the real activity names.

Machine tests check what the engine does with the quarantine definition (which worker
runs when, which transition follows), not what the workers do to a cluster; those run
against the real API server in ``test_quarantine_activities.py``. These record each call
and return the event the real worker would. A target whose name starts with
``unisolable`` makes the policy worker fail, as a missing workload would.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import non_retryable
from models.quarantine import (
    EvidenceRecorded,
    PolicyApplied,
    QuarantineStep,
    SecurityNotified,
    evidence_name,
    policy_name,
)

#: (activity, target name, state) of every call, in order.
CALLS: list[tuple[str, str, str]] = []


def _called(name: str, step: QuarantineStep) -> None:
    CALLS.append((name, step.target.name, step.state))


def calls_for(target: str) -> list[str]:
    """The activities run for one target, in order."""
    return [name for name, called_for, _ in CALLS if called_for == target]


@activity.defn(name="quarantine.apply_deny_policy")
async def apply_deny_policy(step: QuarantineStep) -> PolicyApplied:
    _called("apply_deny_policy", step)
    if step.target.name.startswith("unisolable"):
        raise non_retryable(f"nothing to isolate: no Deployment or Service {step.target.name}")
    return PolicyApplied(
        name=policy_name(step.target),
        selector={"app": step.target.name},
        selected_by="deployment",
        changed=True,
    )


@activity.defn(name="quarantine.snapshot_evidence")
async def snapshot_evidence(step: QuarantineStep) -> EvidenceRecorded:
    _called("snapshot_evidence", step)
    return EvidenceRecorded(config_map=evidence_name(step.target), images=["app=web:1.0"])


@activity.defn(name="quarantine.label_workload")
async def label_workload(step: QuarantineStep) -> None:
    _called("label_workload", step)


@activity.defn(name="quarantine.notify_security")
async def notify_security(step: QuarantineStep) -> SecurityNotified:
    _called("notify_security", step)
    return SecurityNotified(kubernetes_event=f"{step.target.namespace}/{step.target.name}.q")


@activity.defn(name="quarantine.remove_deny_policy")
async def remove_deny_policy(step: QuarantineStep) -> None:
    _called("remove_deny_policy", step)


@activity.defn(name="quarantine.unlabel_workload")
async def unlabel_workload(step: QuarantineStep) -> None:
    _called("unlabel_workload", step)


RECORDING_ACTIVITIES = [
    apply_deny_policy,
    snapshot_evidence,
    label_workload,
    notify_security,
    remove_deny_policy,
    unlabel_workload,
]
