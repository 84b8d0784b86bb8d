"""Models every operator shares: targets, events, commands, snapshots and status.

Why one module: watchers send :class:`EventEnvelope`, the CLI sends
:class:`CommandRequest`, the engine answers with :class:`OperatorStatus`. Keeping
them together, free of Temporal and Kubernetes imports, lets each layer speak the
same language while import-linter keeps the layers apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Workflow IDs are ``<operator>/<namespace>/<name>``.
WORKFLOW_ID_SEPARATOR = "/"

#: The name of the signal that carries every watcher event.
EVENT_SIGNAL = "event"
#: The name of the update that carries every human command.
COMMAND_UPDATE = "command"
#: The name of the query that returns :class:`OperatorStatus`.
STATUS_QUERY = "status"


class Target(BaseModel):
    """The Kubernetes object an operator instance is responsible for."""

    model_config = ConfigDict(frozen=True)

    namespace: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    kind: str = "Deployment"

    def workflow_id(self, operator: str) -> str:
        """The one workflow ID for this operator and target."""
        return workflow_id(operator, self.namespace, self.name)


def workflow_id(operator: str, namespace: str, name: str) -> str:
    """Build ``<operator>/<namespace>/<name>``, the ID of the workflow for a target."""
    return WORKFLOW_ID_SEPARATOR.join((operator, namespace, name))


def parse_workflow_id(value: str) -> tuple[str, str, str]:
    """Split a workflow ID into operator, namespace and name, or raise ``ValueError``."""
    parts = value.split(WORKFLOW_ID_SEPARATOR)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{value!r} is not a workflow ID; expected <operator>/<namespace>/<name>")
    return parts[0], parts[1], parts[2]


class EventEnvelope(BaseModel):
    """One event for one operator instance, as sent by a watcher or raised internally.

    ``id`` makes delivery idempotent: the workflow ignores an ID it has seen, so two
    watcher replicas, or a watcher that restarts and replays, never move a machine twice.
    """

    id: str = Field(min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=128)
    payload: dict[str, Any] = Field(default_factory=dict)
    source: str = "unknown"
    observed_at: datetime | None = None


#: An operator's name: what workflow IDs, CLI commands and webhook paths start with.
OPERATOR_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"

#: How a command reached the workflow: straight to Temporal, where ``by`` is whatever the
#: sender wrote; or as an ``Approval`` through the API server, which authenticated ``by``.
#: Or by the watcher of the target's own resource, which asked for it (a Canary's
#: ``spec.suspend``): the approver rules do not apply to those.
CommandVia = Literal["temporal", "kubernetes", "resource"]

#: A command's name: ``approve``, ``abort``, ``release``, ...
COMMAND_PATTERN = r"^[a-z][a-z0-9-]*$"


class CommandRequest(BaseModel):
    """A human command (approve, abort, pause, ...) sent as a Temporal update."""

    command: str = Field(min_length=1, max_length=64, pattern=COMMAND_PATTERN)
    by: str = Field(min_length=1, max_length=256, description="who gives the command")
    reason: str | None = Field(default=None, max_length=2048)
    args: dict[str, Any] = Field(default_factory=dict)
    via: CommandVia = Field(
        default="temporal",
        description="'kubernetes' when an Approval carried it, so the API server "
        "authenticated 'by'; 'temporal' when sent directly (for local use: 'by' is unchecked); "
        "'resource' when the target's own resource asked for it (spec.suspend)",
    )
    groups: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list,
        max_length=64,
        description="the sender's groups as the API server authenticated them (an Approval's "
        "spec.requestedGroups); only trusted, by approver rules, when via is 'kubernetes'",
    )

    @field_validator("by")
    @classmethod
    def _by_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name who gives the command")
        return value.strip()


#: A command the machine acted on: it took a transition, or the engine paused, resumed or
#: retried.
APPLIED = "applied"
#: A command accepted in one state that no longer applied when the machine reached it: an
#: earlier event (a worker's result, a watcher's event) had moved the machine on, possibly
#: to a final state. Nothing changed because of it; ``detail`` says why.
SUPERSEDED = "superseded"
#: Every outcome a command can have once the machine handled it.
OUTCOMES = (APPLIED, SUPERSEDED)


class CommandReceipt(BaseModel):
    """What the workflow answers to an accepted command, once the machine handled it."""

    command: str
    by: str
    accepted_at: datetime
    state: str = Field(description="the state the command was accepted in")
    now: str = Field(description="the state once the command was handled")
    applied: bool = Field(
        default=True,
        description="False when an earlier event had already moved the machine on",
    )
    outcome: str = Field(default=APPLIED, description="applied or superseded")
    detail: str | None = Field(
        default=None, max_length=1024, description="why a superseded command changed nothing"
    )


class TransitionRecord(BaseModel):
    """One transition, kept in status and history for humans."""

    at: datetime
    source: str
    target: str
    event: str
    event_id: str
    by: str | None = None


class CommandRecord(BaseModel):
    """One accepted command with who gave it, why, and what came of it.

    ``state`` is the state the machine was in when it handled the command; ``accepted_in``
    the one the validator accepted it in (they differ when a worker was running).
    ``outcome`` is ``None`` only on records written before outcomes were recorded.
    """

    at: datetime
    command: str
    by: str
    reason: str | None = None
    state: str
    accepted_in: str | None = None
    outcome: str | None = None
    detail: str | None = None
    via: CommandVia | None = Field(
        default=None, description="how it came (None on records written before it was kept)"
    )


class EngineSettings(BaseModel):
    """Knobs of the engine itself, carried with the workflow input.

    ``continue_as_new_after`` forces a continue-as-new after that many processed events
    (tests use a low number). ``history_event_limit`` bounds a run's history: once it has
    that many events the run continues as new before its next item, so a rollout that runs
    for days never nears Temporal's limits (it warns at 10,240 events and ends a run at
    51,200); one turn of the loop adds at most a few dozen events. The default is low
    because a worker that restarts replays every cached rollout's run from its first event
    (about 0.65 ms an event on a 2-core machine): 3,584 events made each replay 2.5 s, and
    20 of them at once outran the workflow task timeout. Temporal's own suggestion is
    followed as well.
    """

    continue_as_new_after: int | None = Field(default=None, ge=1)
    history_event_limit: int = Field(default=1_024, ge=64, le=40_960)
    remember_event_ids: int = Field(default=2000, ge=10)
    keep_records: int = Field(default=50, ge=1)


class MachineSnapshot(BaseModel):
    """The whole state of one operator instance: what continue-as-new carries."""

    state: str
    data: dict[str, Any] = Field(default_factory=dict)
    entered_at: datetime
    entry_seq: int = 0
    timer_due: datetime | None = None
    paused: bool = False
    paused_timer_remaining_s: float | None = None
    error: str | None = None
    seen_event_ids: list[str] = Field(default_factory=list)
    pending: list[EventEnvelope] = Field(default_factory=list)
    transitions: list[TransitionRecord] = Field(default_factory=list)
    commands: list[CommandRecord] = Field(default_factory=list)
    events_processed: int = 0
    runs: int = 1


#: At most this many late watcher events are handed from a finished run to the next one.
MAX_CARRIED_EVENTS = 100


class OperatorInput(BaseModel):
    """The input of every operator workflow.

    ``spec`` is kept as plain data and validated by the operator's own spec model inside
    the workflow, so a bad spec fails the workflow at once with a message naming the field
    instead of failing the workflow task forever.
    """

    target: Target
    spec: dict[str, Any] = Field(default_factory=dict)
    resume: MachineSnapshot | None = None
    engine: EngineSettings = Field(default_factory=EngineSettings)
    carried: list[EventEnvelope] = Field(
        default_factory=list,
        max_length=MAX_CARRIED_EVENTS,
        description="watcher events that reached the previous run after it had finished; "
        "this fresh run handles them first",
    )
    first_entry_seq: int = Field(
        default=0,
        ge=0,
        description="where a fresh run that follows a finished one counts state entries from, "
        "so its workers' step keys never repeat the finished run's",
    )


class OperatorStatus(BaseModel):
    """What the ``status`` query returns."""

    workflow_id: str
    operator: str
    target: Target
    state: str
    phase: str = Field(default="", description="the phase the state is shown as (Flagger's)")
    final: bool
    settled: bool
    outcome: str = Field(description="running, waiting, succeeded or failed")
    paused: bool
    since: datetime
    timer_due: datetime | None = None
    error: str | None = None
    accepted_commands: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    transitions: list[TransitionRecord] = Field(default_factory=list)
    commands: list[CommandRecord] = Field(default_factory=list)
    waiting_for: list[str] = Field(
        default_factory=list,
        description="what a running machine waits for: its worker, its timer, a command, "
        "an event; empty once final",
    )
    details: str = ""


SpecT = TypeVar("SpecT", bound=BaseModel)
DataT = TypeVar("DataT", bound=BaseModel)


class StepInput(BaseModel, Generic[SpecT, DataT]):
    """The one argument of every state-entry activity.

    ``step_key`` is stable across retries and replays of the same state entry, so an
    activity can use it to make its side effect idempotent.
    """

    workflow_id: str
    target: Target
    state: str
    phase: str = Field(default="", description="the phase users know the state by")
    step_key: str
    spec: SpecT
    data: DataT
