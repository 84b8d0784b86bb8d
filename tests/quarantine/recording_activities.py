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
from models.gitops_modes import PullRequestPolled
from models.quarantine import (
    EvidenceRecorded,
    IsolationRecorded,
    PolicyApplied,
    QuarantineStep,
    ReleaseApplied,
    ReleaseProposed,
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


#: Targets whose name starts with this have a configured GitOps repository (the stand-ins
#: answer as the real workers would with one); every other target has none.
GITOPS = "gitops"
#: The pull request numbers the stand-ins report, and what the poll reads for each.
RECORD_PR, RELEASE_PR = 1, 2
POLLED: dict[str, str] = {}


@activity.defn(name="quarantine.record_isolation")
async def record_isolation(step: QuarantineStep) -> IsolationRecorded:
    _called("record_isolation", step)
    if not step.target.name.startswith(GITOPS):
        return IsolationRecorded(outcome="not-configured")
    return IsolationRecorded(outcome="opened", number=RECORD_PR, url="https://git.example/pull/1")


@activity.defn(name="quarantine.propose_release")
async def propose_release(step: QuarantineStep) -> ReleaseProposed:
    _called("propose_release", step)
    if not step.target.name.startswith(GITOPS):
        return ReleaseProposed(outcome="not-configured")
    return ReleaseProposed(
        outcome="opened", number=RELEASE_PR, url="https://git.example/pull/2", poll_interval_s=1
    )


@activity.defn(name="quarantine.poll_release")
async def poll_release(step: QuarantineStep) -> PullRequestPolled:
    _called("poll_release", step)
    state = POLLED.get(step.target.name, "open")
    return PullRequestPolled(number=RELEASE_PR, state=state)


@activity.defn(name="quarantine.await_release_applied")
async def await_release_applied(step: QuarantineStep) -> ReleaseApplied:
    _called("await_release_applied", step)
    return ReleaseApplied(policy=policy_name(step.target), waited_s=1.0)


RECORDING_ACTIVITIES = [
    record_isolation,
    propose_release,
    poll_release,
    await_release_applied,
    apply_deny_policy,
    snapshot_evidence,
    label_workload,
    notify_security,
    remove_deny_policy,
    unlabel_workload,
]
