"""The ``Approval`` resource: a human command given through Kubernetes, so RBAC decides who.

Why a resource: a command sent straight to Temporal carries whatever name the sender writes
(``--as``), so anyone who can reach the Temporal frontend can approve as anyone. An
``Approval`` is created through the API server instead, which

* authenticates the sender (certificate, token, OIDC: whatever the cluster uses),
* authorises them with RBAC per namespace (``create approvals`` in ``shop`` lets you command
  the rollouts of ``shop``, nothing else), and
* stamps who they are into ``spec.requestedBy`` with a ``MutatingAdmissionPolicy`` from
  ``request.userInfo``, over anything the client wrote, and keeps the spec immutable after
  (a ``ValidatingAdmissionPolicy``): see ``deploy/approvals.py``.

The approvals watcher (:mod:`watchers.approvals`) hands each new ``Approval`` to its workflow
as the same Temporal update the CLI sends, with ``via="kubernetes"`` and the stamped name, and
writes what came of it into ``status``. The CLI's ``approve``, ``abort``, ... create one by
default when the cluster serves the resource and a watcher runs there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from models.operator import OPERATOR_NAME_PATTERN

#: API group and version (the Canary's), and the resource's names.
APPROVAL_GROUP: Final = "autopilot.dev"
APPROVAL_VERSION: Final = "v1alpha1"
APPROVAL_KIND: Final = "Approval"
APPROVAL_PLURAL: Final = "approvals"
APPROVAL_SINGULAR: Final = "approval"
APPROVAL_SHORT_NAMES: Final = ("apa",)

#: ``status.phase``: not handled yet.
PENDING: Final = "Pending"
#: Accepted by the workflow; the machine has not handled it yet (its worker is running).
QUEUED: Final = "Queued"
#: The machine acted on it.
APPLIED: Final = "Applied"
#: Accepted, but the machine had moved on when it got to it; nothing changed.
SUPERSEDED: Final = "Superseded"
#: The workflow's validator refused it (its state does not take that command), or there is
#: no such running workflow.
REFUSED: Final = "Refused"
#: Older than the watcher's ``approvals_max_age_s`` when it was first seen: never sent.
EXPIRED: Final = "Expired"
#: Phases after which the watcher leaves the object alone.
FINAL_PHASES: Final = frozenset({APPLIED, SUPERSEDED, REFUSED, EXPIRED})

ApprovalPhase = Literal["Pending", "Queued", "Applied", "Superseded", "Refused", "Expired"]


class _Wire(BaseModel):
    """camelCase on the wire, as Kubernetes objects are; unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ApprovalSpec(_Wire):
    """What is asked, of which workflow, and (stamped by the API server) by whom."""

    operator: str = Field(
        default="canary",
        min_length=1,
        max_length=63,
        pattern=OPERATOR_NAME_PATTERN,
        description="the operator whose instance is commanded (canary, quarantine, ...)",
    )
    target: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="the target's name, in the Approval's own namespace (so namespace RBAC "
        "decides who may command it)",
    )
    command: str = Field(
        default="approve",
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9-]*$",
        description="the command: approve, promote, abort, pause, resume, retry, or one the "
        "operator declares",
    )
    reason: str | None = Field(default=None, max_length=2048, description="why; recorded")
    requested_by: str | None = Field(
        default=None,
        max_length=256,
        description="who created it, as the API server authenticated them; set by the "
        "admission policy, whatever the client wrote",
    )
    requested_groups: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="the creator's groups, as the API server authenticated them; set by the "
        "admission policy",
    )


class ApprovalStatus(BaseModel):
    """What came of it, written by the approvals watcher."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    phase: ApprovalPhase | None = Field(default=None, description="Pending until handled")
    workflow_id: str | None = Field(default=None, max_length=512)
    message: str | None = Field(default=None, max_length=2048)
    state: str | None = Field(
        default=None, max_length=128, description="the state the command was accepted in"
    )
    now: str | None = Field(
        default=None, max_length=128, description="the state once the machine handled it"
    )
    handled_at: datetime | None = None


def workflow_id_for(spec: ApprovalSpec, namespace: str) -> str:
    """The workflow an Approval commands: ``<operator>/<namespace>/<target>``."""
    return f"{spec.operator}/{namespace}/{spec.target}"


def update_id_for(uid: str) -> str:
    """The Temporal update ID of an Approval: one per object, so a redelivery is not a repeat.

    Temporal keeps one outcome per update ID in a run; sending the same Approval again after
    a watcher restart returns that outcome instead of giving the command twice.
    """
    return f"approval-{uid}"
