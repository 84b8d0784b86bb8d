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

:class:`ApproverRules` narrow it further, per target: who (users, groups) may give which
commands, checked by the workflow's update validator (see the class for where they live).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from models.operator import COMMAND_PATTERN, OPERATOR_NAME_PATTERN, CommandRequest

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


#: A user or group name as the API server reports it (``request.userInfo``).
Principal = Annotated[str, Field(min_length=1, max_length=256)]


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
        pattern=COMMAND_PATTERN,
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
    requested_groups: list[Principal] = Field(
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


#: A command name a rule covers.
RuledCommand = Annotated[str, Field(min_length=1, max_length=64, pattern=COMMAND_PATTERN)]
#: At most this many rules per target, and names per rule: far above what a team writes.
MAX_RULES: Final = 16
MAX_PRINCIPALS: Final = 64


class ApproverRule(_Wire):
    """Who may give some commands: any of the users, or anyone in any of the groups."""

    users: list[Principal] = Field(
        default_factory=list,
        max_length=MAX_PRINCIPALS,
        description="user names as the API server authenticates them (a ServiceAccount is "
        "system:serviceaccount:<namespace>:<name>)",
    )
    groups: list[Principal] = Field(
        default_factory=list,
        max_length=MAX_PRINCIPALS,
        description="groups as the API server authenticates them",
    )
    commands: list[RuledCommand] = Field(
        default_factory=list,
        max_length=MAX_PRINCIPALS,
        description="the commands this rule covers (approve, promote, abort, ...); empty: "
        "every command",
    )

    def covers(self, command: str) -> bool:
        """Whether this rule says who may give ``command``."""
        return not self.commands or command in self.commands

    def allows(self, request: CommandRequest, authenticated: bool) -> bool:
        """Whether ``request``'s sender is named by this rule (groups only when authenticated)."""
        if request.by in self.users:
            return True
        return authenticated and bool(set(request.groups) & set(self.groups))

    def describe(self) -> str:
        """``users alice, bob or groups shop:leads`` as the refusal says it."""
        parts = []
        if self.users:
            parts.append(f"users {', '.join(self.users)}")
        if self.groups:
            parts.append(f"groups {', '.join(self.groups)}")
        return " or ".join(parts) or "nobody"


class ApproverRules(_Wire):
    """Per-target approver rules: who may give which commands, checked by the validator.

    Where they live: in the target's own spec, as its ``approvers`` field (a Canary's
    ``spec.approvers``). Why there: the spec already travels every path an instance is
    started by (the Canary resource, ``autopilot canary start -f``, signal-with-start from a
    watcher) and is carried across continue-as-new, so no path needed to learn a new field;
    and the people who may edit the Canary are the ones who may change who approves it. The
    engine checks the rules of any operator whose spec model declares ``approvers`` with this
    type (see :func:`refusal`).

    A command is *ruled* when some rule covers it; a ruled command is accepted only from a
    sender some covering rule names. Commands no rule covers, and targets without rules, are
    unchanged: RBAC on ``Approval`` (and whoever reaches Temporal) decides.

    Names are trusted only when the API server authenticated them (``via: kubernetes``, an
    ``Approval``). A ruled command sent straight to Temporal (``via: temporal``), whose name
    is whatever the sender wrote, is refused, unless ``allowUnauthenticated`` (default off,
    for local use) lets its name be matched against ``users``. A ``pause``/``resume`` asked
    for by the target's own resource (``spec.suspend``, ``via: resource``) is not ruled:
    whoever may edit the resource may edit its rules anyway.
    """

    rules: list[ApproverRule] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="who may give which commands; a command no rule covers is not restricted",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="match the unchecked name of a command sent straight to Temporal "
        "(via temporal) against users; for local use only",
    )

    def ruled(self, command: str) -> list[ApproverRule]:
        """The rules that cover ``command`` (empty: anyone may give it)."""
        return [rule for rule in self.rules if rule.covers(command)]

    def summary(self) -> list[str]:
        """One line per rule, as ``autopilot status`` shows them."""
        lines = [
            f"{', '.join(rule.commands) or 'every command'}: {rule.describe()}"
            for rule in self.rules
        ]
        if self.allow_unauthenticated:
            lines.append("unauthenticated names (via temporal) are matched against users")
        return lines


def refusal(rules: ApproverRules | None, request: CommandRequest, target: str) -> str | None:
    """Why ``request`` may not be given to ``target`` under ``rules``; ``None``: it may.

    The message names who may, so the person refused knows whom to ask.
    """
    if rules is None or request.via == "resource":
        return None
    covering = rules.ruled(request.command)
    if not covering:
        return None
    who = "; ".join(rule.describe() for rule in covering)
    authenticated = request.via == "kubernetes"
    if not authenticated and not rules.allow_unauthenticated:
        return (
            f"'{request.command}' on {target} is restricted by its approver rules to {who}, "
            f"and a command sent straight to Temporal carries an unchecked name "
            f"({request.by!r}): use an Approval (autopilot {request.command} --via kubernetes)"
        )
    if any(rule.allows(request, authenticated) for rule in covering):
        return None
    return (
        f"{request.by} may not give '{request.command}' on {target}: its approver rules allow "
        f"only {who}"
    )
