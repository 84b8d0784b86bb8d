"""What to do about one ``Canary``: a pure function of the object and its Deployment.

Why level-based and pure: events say *that* something changed; what to do is decided from
the latest state of the Canary and of its Deployment, compared with what the watcher
already delivered (kept in the Canary's status). So a replayed, duplicated or reordered
event decides the same thing, and the decision is testable without a cluster.

Event IDs come from the objects, never from the moment:

* ``NewRevision``: ``k8s:canary/<canary uid>:deployment/<deployment uid>:<generation>:<revision>``
  - the same Deployment state always gives the same ID, so a replay is dropped by the
  workflow; going back to an older template (A, B, then A again) is a new generation, hence
  a new event;
* ``TargetDeleted``: ``k8s:canary/<uid>:deleted`` or ``k8s:deployment/<uid>:deleted``.

``spec.suspend`` (Flagger's) is a command, not an event: when it differs from the value the
status says was applied (``suspended``), the workflow is given the engine's ``pause`` or
``resume`` (:class:`Command`), by the ``canary-resources`` watcher with reason
``spec.suspend`` (``via: resource``: the Canary asked for it, so its approver rules, which
whoever edits the Canary may change, do not apply). While it is true no new revision is
sent: the status says one waits, and it goes out, after the ``resume``, once ``suspend`` is
false. A change of ``suspend`` alone is never a new revision (revisions come from the
Deployment's pod template).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from models.canary import CanarySpecError, NewRevision, TargetDeleted, load_canary_spec
from models.canary_watch import INVALID_PHASE, PENDING_PHASE, CanaryStatus
from models.operator import CommandRequest, EventEnvelope, Target, parse_workflow_id
from watchers.kube.objects import Absent, CanaryObject, DeploymentState

#: ``EventEnvelope.source`` of every event the Kubernetes watcher sends.
SOURCE = "kubernetes"
#: Who gives the ``pause``/``resume`` of ``spec.suspend`` (the sense's name), and why.
SUSPEND_BY = "canary-resources watcher"
SUSPEND_REASON = "spec.suspend"


@dataclass(frozen=True)
class Send:
    """Deliver one event; on success, write ``status`` (bookkeeping) to the Canary.

    Attributes:
        target: the workflow's target (namespace and Deployment name).
        envelope: the event.
        start_spec: the Canary's spec for signal-with-start; ``None`` to signal only.
        status: the status fields to write once Temporal has the event.
        release: remove our finalizer once delivered (the Canary is being deleted).
        stable: the revision the primary runs, when the Canary's status says so (its last
            rollout succeeded with it), for the summary of a workflow this starts.
    """

    target: Target
    envelope: EventEnvelope
    start_spec: dict[str, Any] | None
    status: dict[str, Any]
    release: bool = False
    stable: str | None = None


@dataclass(frozen=True)
class WriteStatus:
    """Write these status fields (nothing to deliver)."""

    status: dict[str, Any]


@dataclass(frozen=True)
class AddFinalizer:
    """Put our finalizer on the Canary before anything else."""


@dataclass(frozen=True)
class Command:
    """Give the workflow an engine command (``spec.suspend``); then write ``status``.

    The status is written once the command is accepted, and also when there is nothing to
    command (no running workflow, or already paused or running): the level is reached.

    Attributes:
        workflow_id: the workflow to command.
        request: ``pause`` or ``resume``, by :data:`SUSPEND_BY` with :data:`SUSPEND_REASON`.
        status: the status fields to write afterwards.
    """

    workflow_id: str
    request: CommandRequest
    status: dict[str, Any]


Action = Send | WriteStatus | AddFinalizer | Command


def _now() -> datetime:
    return datetime.now(UTC)


def _changed(canary: CanaryObject, fields: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``fields`` that differs from the Canary's status (wire names)."""
    current = canary.status.model_dump(by_alias=True, mode="json")
    return {name: value for name, value in fields.items() if current.get(name) != value}


def _deleted(target: Target, event_id: str, reason: str, now: datetime) -> EventEnvelope:
    return EventEnvelope(
        id=event_id,
        type=TargetDeleted.type_name(),
        payload=TargetDeleted(reason=reason).model_dump(mode="json"),
        source=SOURCE,
        observed_at=now,
    )


def _target(canary: CanaryObject) -> Target:
    return Target(namespace=canary.namespace, name=canary.target_name)


def decide(
    canary: CanaryObject, deployment: DeploymentState | Absent, now: datetime | None = None
) -> list[Action]:
    """The actions that bring the workflow and the Canary's status up to date.

    Args:
        canary: the latest Canary.
        deployment: its target Deployment, or :data:`~watchers.kube.objects.ABSENT`.
        now: the observation time put in envelopes.

    Returns:
        Actions in order; an empty list when everything is already delivered.
    """
    now = now or _now()
    if canary.deleting:
        if not canary.has_finalizer:
            return []  # someone else's finalizer keeps it; ours is already released
        return [
            Send(
                _target(canary),
                _deleted(
                    _target(canary),
                    f"k8s:canary/{canary.uid}:deleted",
                    f"Canary {canary.namespace}/{canary.name} deleted",
                    now,
                ),
                None,
                {},
                release=True,
            )
        ]
    if not canary.has_finalizer:
        return [AddFinalizer(), *decide_live(canary, deployment, now)]
    return decide_live(canary, deployment, now)


def decide_live(
    canary: CanaryObject, deployment: DeploymentState | Absent, now: datetime
) -> list[Action]:
    """:func:`decide` for a Canary that is not being deleted."""
    actions: list[Action] = []
    status = canary.status
    # The Canary was re-pointed at another Deployment: the old workflow loses its target.
    if status.workflow_id and status.workflow_id != canary.workflow_id:
        _, namespace, name = parse_workflow_id(status.workflow_id)
        old = Target(namespace=namespace, name=name)
        actions.append(
            Send(
                old,
                _deleted(
                    old,
                    f"k8s:canary/{canary.uid}:retargeted:{status.workflow_id}",
                    f"Canary {canary.namespace}/{canary.name} now targets {canary.target_name}",
                    now,
                ),
                None,
                {"workflowId": None, "observedRevision": None, "targetUid": None},
            )
        )
        status = status.model_copy(
            update={"workflow_id": None, "observed_revision": None, "target_uid": None}
        )
        canary = _with_status(canary, status)

    try:
        suspend = load_canary_spec(canary.spec).suspend
    except CanarySpecError as error:
        message = "; ".join(f"spec.{problem}" for problem in error.problems)
        fields: dict[str, Any] = {"phase": INVALID_PHASE, "message": message[:1024]}
        fields["observedGeneration"] = canary.generation
        changed = _changed(canary, fields)
        return [*actions, WriteStatus(changed)] if changed else actions

    if suspend != bool(status.suspended):
        command = "pause" if suspend else "resume"
        request = CommandRequest(
            command=command, by=SUSPEND_BY, reason=SUSPEND_REASON, via="resource"
        )
        actions.append(Command(canary.workflow_id, request, {"suspended": suspend}))
        status = status.model_copy(update={"suspended": suspend})
        canary = _with_status(canary, status)

    if isinstance(deployment, Absent):
        if status.target_uid:
            actions.append(
                Send(
                    _target(canary),
                    _deleted(
                        _target(canary),
                        f"k8s:deployment/{status.target_uid}:deleted",
                        f"Deployment {canary.namespace}/{canary.target_name} deleted",
                        now,
                    ),
                    None,
                    {
                        "observedRevision": None,
                        "targetUid": None,
                        "message": f"Deployment {canary.target_name} not found",
                    },
                )
            )
            return actions
        fields = {
            "message": f"waiting for Deployment {canary.target_name}",
            "observedGeneration": canary.generation,
        }
        if status.phase in (None, INVALID_PHASE):
            fields["phase"] = PENDING_PHASE
        changed = _changed(canary, fields)
        return [*actions, WriteStatus(changed)] if changed else actions

    if status.observed_revision == deployment.revision and status.target_uid == deployment.uid:
        fields = {"observedGeneration": canary.generation}
        if status.phase == INVALID_PHASE:
            fields.update({"phase": PENDING_PHASE, "message": "spec is valid again"})
        changed = _changed(canary, fields)
        return [*actions, WriteStatus(changed)] if changed else actions

    if suspend:
        fields = {
            "message": f"suspended (spec.suspend): revision {deployment.revision} waits",
            "observedGeneration": canary.generation,
        }
        changed = _changed(canary, fields)
        return [*actions, WriteStatus(changed)] if changed else actions

    event = NewRevision(revision=deployment.revision, generation=deployment.generation)
    envelope = EventEnvelope(
        id=(
            f"k8s:canary/{canary.uid}:deployment/{deployment.uid}:"
            f"{deployment.generation}:{deployment.revision}"
        ),
        type=NewRevision.type_name(),
        payload=event.model_dump(mode="json"),
        source=SOURCE,
        observed_at=now,
    )
    fields = {
        "observedRevision": deployment.revision,
        "targetUid": deployment.uid,
        "observedGeneration": canary.generation,
        "workflowId": canary.workflow_id,
    }
    if status.phase in (None, INVALID_PHASE):
        fields.update({"phase": PENDING_PHASE, "message": f"revision {deployment.revision} sent"})
    stable = status.observed_revision if status.phase == "Succeeded" else None
    actions.append(Send(_target(canary), envelope, dict(canary.spec), fields, stable=stable))
    return actions


def _with_status(canary: CanaryObject, status: CanaryStatus) -> CanaryObject:
    return replace(canary, status=status)
