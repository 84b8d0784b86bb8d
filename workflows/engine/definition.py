"""The declarative shape of an operator: states, events, transitions, timers and workers.

An operator is written top to bottom in one file::

    door = Operator("door", spec=DoorSpec, data=DoorData, initial="Closed")
    door.state("Closed", run=[lock])
    door.state("Open", after=timedelta(minutes=5), then="Closed")
    door.state("Removed", final=True)
    door.on("Closed", Command("open"), go="Open")

Nothing here performs I/O. Workers are named by :class:`ActivityRef` (a name and the
event model the activity returns), never imported, so a workflow module cannot reach
Kubernetes or Prometheus even by accident. The definition is checked when the operator
is finished (:meth:`Operator.check`, see :mod:`workflows.engine.checks`): a broken machine
is refused before a worker ever runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, overload

from pydantic import BaseModel
from typing_extensions import TypeVar

from models.events import Event
from models.kube_events import EventNote
from models.operator import CommandRequest, Target
from models.senses import Sense

SpecT = TypeVar("SpecT", bound=BaseModel)
DataT = TypeVar("DataT", bound=BaseModel)
#: The event a context carries; ``Any`` where a context is not about one event.
EventT_co = TypeVar("EventT_co", covariant=True, default=Any)
#: The event model a transition is declared for.
EventT = TypeVar("EventT", bound=Event)

#: Source wildcard: any state that is not final.
ANY = "*"


class Timeout(Event):
    """Raised by the engine when a state's ``after`` timer fires."""

    state: str


class ActivityFailed(Event):
    """Raised by the engine when a state's worker failed after all its retries."""

    activity: str
    message: str


#: Events the engine itself raises, known to every operator.
BUILTIN_EVENTS: tuple[type[Event], ...] = (Timeout, ActivityFailed)

#: Commands the engine handles itself for every pausable operator.
ENGINE_COMMANDS = ("pause", "resume")
#: The engine's command that runs a state's workers again after one failed unhandled.
RETRY = "retry"
#: Every command the engine can handle itself (unless the operator declares its own).
BUILTIN_COMMANDS = (*ENGINE_COMMANDS, RETRY)
#: The source of the envelopes that carry a worker's result into the machine.
WORKER_SOURCE = "worker"


@dataclass(frozen=True)
class Command:
    """A human command as a transition trigger, e.g. ``Command("approve")``."""

    name: str
    doc: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.name


#: How long the server waits for a running activity's next heartbeat before retrying it.
#: The worker beats every third of it; a crashed worker costs about this much per activity.
DEFAULT_HEARTBEAT_TIMEOUT = timedelta(seconds=3)


@dataclass(frozen=True)
class ActivityRef:
    """A worker named by its activity name, with the event model it returns (if any).

    Workflows refer to activities by name so that they never import the I/O code that
    implements them; the worker checks at start-up that every reference has an
    implementation.

    ``heartbeat_timeout``: the worker heartbeats every activity for as long as it runs
    (``service/heartbeats.py``), so a worker that dies mid-activity is noticed after this
    long and the activity retried elsewhere, instead of after the whole ``timeout``.
    """

    name: str
    returns: type[Event] | None = None
    timeout: timedelta = timedelta(seconds=60)
    heartbeat_timeout: timedelta | None = DEFAULT_HEARTBEAT_TIMEOUT
    max_attempts: int = 10
    initial_retry_interval: timedelta = timedelta(milliseconds=200)
    maximum_retry_interval: timedelta = timedelta(seconds=10)
    summary: str | None = None
    #: Run only when this is true of the machine as the state is entered (spec, data, state).
    #: Why: adding a worker to a state that running workflows have entered changes the
    #: commands they replay; a condition that calls ``workflow.patched`` keeps it out of them.
    when: Callable[[Ctx[Any, Any]], bool] | None = field(default=None, compare=False)
    #: Run it in the workflow's own worker as a local activity (when true of the machine as
    #: the state is entered). Why: an activity task costs a dispatch through the server and
    #: a workflow task of its own to take its result; a local one runs inside the workflow
    #: task that asked for it, so a step of short workers (a query, a route write) is one
    #: workflow task instead of four. Only for workers that end in seconds: signals and
    #: commands that arrive meanwhile wait for it (at most until the SDK extends the
    #: workflow task, about 8 s). It is not heartbeated; one cut off by a crash runs again
    #: when the next worker replays (every worker is idempotent). ``timeout`` and the retry
    #: settings apply as they do to an activity task. Only a state's ``run=`` workers run
    #: locally; the recorder and the alerter are always activity tasks.
    local: bool | Callable[[Ctx[Any, Any]], bool] = field(default=False, compare=False)

    @property
    def shown_name(self) -> str:
        """The name, with its condition when it has one (``describe``, diagrams)."""
        if self.when is None:
            return self.name
        return f"{self.name} if {getattr(self.when, '__name__', 'condition')}"


@dataclass(frozen=True)
class Ctx(Generic[SpecT, DataT, EventT_co]):
    """What guards, effects, timers and summaries see: pure data, no handles.

    The third parameter is the event being handled, so mypy checks a guard against the
    trigger it is declared for: ``def ready(ctx: Ctx[Spec, Data, Started])`` given to
    ``on(..., AnalysisResult, when=ready)`` is a type error. A guard shared by several
    triggers takes their union; ``Ctx[Spec, Data]`` (any event) fits every trigger. For a
    :class:`Command` trigger the event is the :class:`~models.operator.CommandRequest`.
    """

    spec: SpecT
    data: DataT
    state: str
    now: datetime
    event: EventT_co = None  # type: ignore[assignment]

    @property
    def command(self) -> CommandRequest | None:
        """The command being handled, when the trigger is a :class:`Command`."""
        return self.event if isinstance(self.event, CommandRequest) else None


@dataclass(frozen=True)
class Occasion:
    """Where a transition happens, for what it tells the world: the workflow, its target and
    the ID of the event handled (stable across replays and retries: a dedupe key's root)."""

    workflow_id: str
    target: Target
    event_id: str


Guard = Callable[[Ctx[Any, Any, Any]], bool]
AlertsFn = Callable[[Ctx[Any, Any, Any], Ctx[Any, Any, Any], Occasion], Sequence[BaseModel]]
Effect = Callable[[Ctx[Any, Any, Any]], BaseModel]
DurationFn = Callable[[Ctx[Any, Any, Any]], timedelta]
Trigger = type[Event] | Command


@dataclass
class StateDef:
    """One declared state."""

    name: str
    run: tuple[ActivityRef, ...] = ()
    after: timedelta | DurationFn | None = None
    final: bool = False
    settled: bool = False
    failed: bool = False
    doc: str = ""
    waits_for: str = ""
    phase: str = ""

    @property
    def shown_phase(self) -> str:
        """The phase shown to users (webhooks, the target's status): ``phase`` or the name."""
        return self.phase or self.name

    @property
    def outcome(self) -> str:
        """``running``, ``succeeded``, ``failed`` (final or settled) or ``waiting`` (settled)."""
        if self.failed and (self.final or self.settled):
            return "failed"
        if self.final:
            return "succeeded"
        return "waiting" if self.settled else "running"


@dataclass
class TransitionDef:
    """One declared transition: in ``source``, on ``trigger``, if ``when``, go to ``target``.

    ``target`` of ``None`` is an internal transition: the effect applies, the state is not
    re-entered and its workers do not run again.
    """

    source: str
    trigger: Trigger
    target: str | None
    when: Guard | None = None
    do: Effect | None = None
    doc: str = ""
    order: int = 0

    @property
    def trigger_name(self) -> str:
        """``Command:approve`` or the event type name, for tables and messages."""
        if isinstance(self.trigger, Command):
            return f"/{self.trigger.name}"
        return self.trigger.type_name()

    @property
    def guard_name(self) -> str | None:
        """The guard's function name, shown in tables and diagrams."""
        if self.when is None:
            return None
        return getattr(self.when, "__name__", "guard")


def sense_events(sense: Sense) -> tuple[type[Event], ...]:
    """The event types ``sense`` can send."""
    sends = sense.sends
    return sends if isinstance(sends, tuple) else (sends,)


class DefinitionError(ValueError):
    """An operator definition is inconsistent; the message names every problem found."""

    def __init__(self, operator: str, problems: Sequence[str]) -> None:
        self.operator = operator
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"operator {operator!r} is not valid:\n{lines}")


@dataclass
class Operator(Generic[SpecT, DataT]):
    """A service mesh operator: a typed state machine with workers and human commands.

    Args:
        name: Workflow type name and first part of every workflow ID.
        spec: Pydantic model of the user's spec (validated at workflow start).
        data: Pydantic model of the machine's memory; every field needs a default.
        initial: The state a new instance starts in.
        events: Event models watchers may send in (activity results register themselves).
        senses: What feeds the operator (:mod:`models.senses`): Kubernetes kinds, PromQL
            templates, webhook event types, dedicated watchers. The watcher runtime builds
            its informers, queries and routes from them; every event type a sense sends
            must be handled by a transition.
        search_attributes: Extra typed search attributes, name to value function.
        details: Markdown shown as the workflow's current details in the Temporal UI.
        pausable: Whether the engine accepts ``pause`` and ``resume``.
        description: One paragraph for ``autopilot describe``.
        announce: What to tell the cluster's users, as Kubernetes Events, when a transition
            is taken: given the context before it and the one after it (the new data and
            state, the same event), the notes to record. Pure, like an effect.
        recorder: The worker that records each note (one
            :class:`~models.kube_events.RecordEvent`); started, never waited for.
        alerts: What to send to people outside the cluster (chat alerts) when a transition
            is taken: given the contexts before and after it and the :class:`Occasion`, the
            requests for ``alerter``, one pydantic model each. Pure, like ``announce``.
        alerter: The worker that sends each alert request; started, never waited for.
    """

    name: str
    spec: type[SpecT]
    data: type[DataT]
    initial: str
    events: Sequence[type[Event]] = ()
    senses: Sequence[Sense] = ()
    search_attributes: dict[str, Callable[[Ctx[Any, Any]], Any]] = field(default_factory=dict)
    details: Callable[[Ctx[Any, Any]], str] | None = None
    pausable: bool = True
    description: str = ""
    announce: Callable[[Ctx[Any, Any, Any], Ctx[Any, Any, Any]], Sequence[EventNote]] | None = None
    recorder: ActivityRef | None = None
    alerts: AlertsFn | None = None
    alerter: ActivityRef | None = None
    states: dict[str, StateDef] = field(default_factory=dict, init=False)
    transitions: list[TransitionDef] = field(default_factory=list, init=False)
    _declared_problems: list[str] = field(default_factory=list, init=False)

    def state(
        self,
        name: str,
        *,
        run: Sequence[ActivityRef] = (),
        after: timedelta | DurationFn | None = None,
        then: str | None = None,
        final: bool = False,
        settled: bool = False,
        failed: bool = False,
        doc: str = "",
        waits_for: str = "",
        phase: str = "",
    ) -> StateDef:
        """Declare a state, the workers run on entering it and an optional timer.

        ``after`` starts a timer on entry that raises :class:`Timeout`; ``then`` is short
        for ``on(name, Timeout, go=then)``. ``final`` ends the workflow; ``settled`` marks a
        state that waits for a human or a new event (``autopilot watch`` stops there);
        ``failed`` says that a final or settled state is a failure (exit code, colour).
        ``waits_for`` names what else the state waits for when it is neither (an event from
        another workflow, say); status shows it, and it satisfies the load check that every
        running machine waits for something. ``phase`` is the name users of a peer tool know
        the state by (the canary's are Flagger's); status, workers and resources show it.
        """
        if name in self.states:
            self._declared_problems.append(f"state {name!r} is declared twice")
        if then is not None and after is None:
            self._declared_problems.append(f"state {name!r} has then={then!r} but no after=")
        definition = StateDef(
            name=name,
            run=tuple(run),
            after=after,
            final=final,
            settled=settled,
            failed=failed,
            doc=doc,
            waits_for=waits_for,
            phase=phase,
        )
        self.states[name] = definition
        if then is not None:
            self.on(name, Timeout, go=then, doc=f"after the timer of {name}")
        return definition

    @overload
    def on(
        self,
        source: str | Sequence[str],
        trigger: Command,
        *,
        go: str | None,
        when: Callable[[Ctx[SpecT, DataT, CommandRequest]], bool] | None = None,
        do: Callable[[Ctx[SpecT, DataT, CommandRequest]], BaseModel] | None = None,
        doc: str = "",
    ) -> None: ...

    @overload
    def on(
        self,
        source: str | Sequence[str],
        trigger: type[EventT],
        *,
        go: str | None,
        when: Callable[[Ctx[SpecT, DataT, EventT]], bool] | None = None,
        do: Callable[[Ctx[SpecT, DataT, EventT]], BaseModel] | None = None,
        doc: str = "",
    ) -> None: ...

    def on(
        self,
        source: str | Sequence[str],
        trigger: Trigger,
        *,
        go: str | None,
        when: Guard | None = None,
        do: Effect | None = None,
        doc: str = "",
    ) -> None:
        """Declare a transition from ``source`` (a state, a list, or ``"*"``) on ``trigger``.

        Transitions are tried in declaration order; the first whose guard passes is taken.
        The guard and the effect see a :class:`Ctx` whose ``event`` is the trigger's model
        (the :class:`~models.operator.CommandRequest` for a command), and mypy checks it.
        """
        sources = [source] if isinstance(source, str) else list(source)
        for src in sources:
            self.transitions.append(
                TransitionDef(
                    source=src,
                    trigger=trigger,
                    target=go,
                    when=when,
                    do=do,
                    doc=doc,
                    order=len(self.transitions),
                )
            )

    # ----------------------------------------------------------------- lookups

    def event_models(self) -> dict[str, type[Event]]:
        """Every event this operator understands, by type name."""
        models: dict[str, type[Event]] = {e.type_name(): e for e in BUILTIN_EVENTS}
        for model in self.events:
            models[model.type_name()] = model
        for sense in self.senses:
            for model in sense_events(sense):
                models[model.type_name()] = model
        for state in self.states.values():
            for ref in state.run:
                if ref.returns is not None:
                    models[ref.returns.type_name()] = ref.returns
        for transition in self.transitions:
            if not isinstance(transition.trigger, Command):
                models[transition.trigger.type_name()] = transition.trigger
        return models

    def handled_events(self) -> set[str]:
        """The type names of the events some transition is declared on."""
        return {
            t.trigger.type_name() for t in self.transitions if not isinstance(t.trigger, Command)
        }

    def activity_refs(self) -> dict[str, ActivityRef]:
        """Every worker any state runs (and its recorder and alerter), by activity name."""
        refs = {ref.name: ref for s in self.states.values() for ref in s.run}
        for extra in (self.recorder, self.alerter):
            if extra is not None:
                refs[extra.name] = extra
        return refs

    def transitions_from(self, state: str) -> list[TransitionDef]:
        """The transitions that may leave ``state``, in the order they are tried.

        Transitions declared for the state itself come first, then wildcard ones, so a
        state can override what ``"*"`` does.
        """
        if state not in self.states:
            return []
        own = [t for t in self.transitions if t.source == state]
        if self.states[state].final:
            return own
        return own + [t for t in self.transitions if t.source == ANY]

    def commands(self) -> list[str]:
        """Every command name this operator accepts in some state."""
        names = {t.trigger.name for t in self.transitions if isinstance(t.trigger, Command)}
        if self.pausable:
            names.update(ENGINE_COMMANDS)
        return sorted(names)

    def commands_in(self, state: str, *, paused: bool = False) -> list[str]:
        """The commands the machine accepts while in ``state``."""
        if state not in self.states or self.states[state].final:
            return []
        names = {
            t.trigger.name for t in self.transitions_from(state) if isinstance(t.trigger, Command)
        }
        if self.pausable:
            names.add("resume" if paused else "pause")
        return sorted(names)

    def check(self) -> Operator[SpecT, DataT]:
        """Refuse an inconsistent definition; return ``self`` so it can end a declaration."""
        from workflows.engine.checks import problems_of

        found = [*self._declared_problems, *problems_of(self)]
        if found:
            raise DefinitionError(self.name, found)
        return self
