"""The durable runtime: one Temporal workflow per operator and target.

Why a workflow: the machine's state, its timers, queued events and every human command
live in Temporal's history, so a canary that runs for days survives worker crashes, server
restarts and redeploys. The loop below is deliberately small:

1. take the next item: internal events (what workers returned) first, then human commands,
   then watcher events; or the state's timer when it is due;
2. drop it if its ID was seen (watchers deliver at least once);
3. find the first transition whose trigger matches and whose guard passes;
4. apply its effect to the machine's data, record it, and enter the target state, which runs
   that state's workers as activities and starts its timer.

Pause freezes the timer and holds watcher events; commands still flow. History stays bounded:
the workflow continues-as-new when Temporal suggests it (or after a configured number of
events), carrying one :class:`MachineSnapshot` with everything, including unprocessed events
and the IDs it has seen.

This module must stay deterministic: no I/O, no clocks but ``workflow.now()``, no randomness.
"""

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

from models.approvals import ApproverRules, refusal
from models.errors import INVALID_SPEC, NON_RETRYABLE, describe
from models.kube_events import RecordEvent
from models.operator import (
    APPLIED,
    COMMAND_UPDATE,
    EVENT_SIGNAL,
    MAX_CARRIED_EVENTS,
    STATUS_QUERY,
    SUPERSEDED,
    CommandReceipt,
    CommandRecord,
    CommandRequest,
    EventEnvelope,
    MachineSnapshot,
    OperatorInput,
    OperatorStatus,
    StepInput,
    TransitionRecord,
)
from models.search_attributes import SEARCH_ATTRIBUTES
from workflows.engine import decision
from workflows.engine.definition import (
    BUILTIN_COMMANDS,
    RETRY,
    WORKER_SOURCE,
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    Occasion,
    Operator,
    Timeout,
    TransitionDef,
)

#: Envelope types of human commands start with this, e.g. ``/approve``.
COMMAND_PREFIX = "/"

#: Patch: watcher events still queued when a run reaches a final state start a fresh run
#: (continue-as-new) instead of being dropped with the finished one.
CARRY_LATE_EVENTS_PATCH = "carry-late-events-to-a-new-run"
#: Patch: a transition the operator announces starts its recorder of Kubernetes Events.
KUBE_EVENTS_PATCH = "announce-transitions-as-kube-events"
#: Patch: a transition the operator alerts about starts its alerter (chat alerts).
ALERTS_PATCH = "send-alerts-of-transitions"
#: Temporal patch: a run continues as new once its history reaches the engine's bound
#: (``EngineSettings.history_event_limit``); runs recorded before it only followed
#: Temporal's suggestion, and replay as they ran.
HISTORY_BOUND_PATCH = "continue-as-new-at-history-bound"
#: Temporal patch: a state's timer is always a Temporal timer, even once it is due (then
#: the shortest one, ``DUE_TIMER``). Runs recorded before it handled a due timer at once,
#: without a timer, and replay as they ran. Why: whether a timer was due is read from
#: ``workflow.now()``, and a worker that takes a workflow task after another worker's
#: attempt timed out can see the time of the attempt that timed out, while the replay of
#: the same history sees the later one; the live worker then started a timer where every
#: replay fired it at once, and that history no longer replayed (found by the chaos run).
ALWAYS_TIMER_PATCH = "state-timer-always-a-temporal-timer"
#: The timer of a state whose timer is already due (under ``ALWAYS_TIMER_PATCH``).
DUE_TIMER = 0.001
#: Temporal patch: a worker marked ``local`` runs as a local activity. Runs recorded before
#: it scheduled every worker as an activity task, and replay as they ran.
LOCAL_WORKERS_PATCH = "local-workers-run-as-local-activities"

_KEY_FACTORIES: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {
    "Keyword": SearchAttributeKey.for_keyword,
    "Int": SearchAttributeKey.for_int,
    "Bool": SearchAttributeKey.for_bool,
    "Double": SearchAttributeKey.for_float,
    "Datetime": SearchAttributeKey.for_datetime,
    "Text": SearchAttributeKey.for_text,
}


def _key(name: str) -> SearchAttributeKey[Any]:
    return _KEY_FACTORIES[SEARCH_ATTRIBUTES[name]](name)


class OperatorWorkflow:
    """Base class of every operator's workflow; subclasses set ``operator`` and ``run``.

    A subclass is three lines::

        @workflow.defn(name="canary")
        class CanaryWorkflow(OperatorWorkflow):
            operator = canary

            @workflow.run
            async def run(self, input: OperatorInput) -> OperatorStatus:
                return await self.run_operator(input)
    """

    operator: ClassVar[Operator[Any, Any]]

    @workflow.init
    def __init__(self, input: OperatorInput) -> None:
        op = self.operator
        self._target = input.target
        self._settings = input.engine
        self._step_model: type[StepInput[Any, Any]] = StepInput[op.spec, op.data]  # type: ignore[name-defined]
        self._spec_error: str | None = None
        self._spec: BaseModel | None = None
        try:
            self._spec = op.spec.model_validate(input.spec)
        except ValidationError as error:
            self._spec_error = describe(error, "spec")
        snap = input.resume or MachineSnapshot(
            state=op.initial,
            data=op.data().model_dump(mode="json"),
            entered_at=workflow.now(),
            entry_seq=input.first_entry_seq,
        )
        self._is_new = input.resume is None
        self._state = snap.state
        self._data: BaseModel = op.data.model_validate(snap.data)
        self._entered_at = snap.entered_at
        self._entry_seq = snap.entry_seq
        self._timer_due = snap.timer_due
        self._paused = snap.paused
        self._paused_remaining = snap.paused_timer_remaining_s
        self._error = snap.error
        self._seen_order: deque[str] = deque(
            snap.seen_event_ids, maxlen=self._settings.remember_event_ids
        )
        self._seen = set(self._seen_order)
        self._internal: deque[EventEnvelope] = deque()
        self._commands: deque[EventEnvelope] = deque()
        self._events: deque[EventEnvelope] = deque()
        for envelope in snap.pending:
            self._queue_for(envelope).append(envelope)
        self._events.extend(input.carried)
        self._carried = {envelope.id for envelope in input.carried}
        self._transitions = list(snap.transitions)
        self._command_log = list(snap.commands)
        self._events_processed = snap.events_processed
        self._processed_this_run = 0
        self._runs = snap.runs
        self._outcomes: dict[str, CommandRecord] = {}
        self._accepted_in: dict[str, str] = {}
        self._working: str | None = None
        self._published: dict[str, Any] = {}
        self._recording: set[asyncio.Task[Any]] = set()
        self._alerting: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- handlers

    @workflow.signal(name=EVENT_SIGNAL)
    def on_event(self, envelope: EventEnvelope) -> None:
        """A watcher's event; duplicates are dropped when processed."""
        if envelope.type.startswith(COMMAND_PREFIX):
            workflow.logger.warning("refusing command %s sent as a signal", envelope.type)
            return
        self._events.append(envelope)

    @workflow.update(name=COMMAND_UPDATE)
    async def on_command(self, request: CommandRequest) -> CommandReceipt:
        """A human command; validated first, so a refused one never enters history."""
        info = workflow.current_update_info()
        envelope_id = f"command:{info.id if info else workflow.uuid4()}"
        accepted_in = self._state
        accepted_at = workflow.now()
        self._accepted_in[envelope_id] = accepted_in
        self._commands.append(
            EventEnvelope(
                id=envelope_id,
                type=COMMAND_PREFIX + request.command,
                payload=request.model_dump(mode="json"),
                source=f"command by {request.by}",
                observed_at=accepted_at,
            )
        )
        await workflow.wait_condition(lambda: envelope_id in self._outcomes)
        outcome = self._outcomes.pop(envelope_id)
        return CommandReceipt(
            command=request.command,
            by=request.by,
            accepted_at=accepted_at,
            state=accepted_in,
            now=outcome.state,
            applied=outcome.outcome == APPLIED,
            outcome=outcome.outcome or APPLIED,
            detail=outcome.detail,
        )

    @on_command.validator
    def validate_command(self, request: CommandRequest) -> None:
        """Refuse a command the current state does not accept, naming state and options.

        Also one the target's approver rules (its spec's ``approvers``, see
        :class:`models.approvals.ApproverRules`) do not allow from its sender. Validators do
        not run on replay, so rules never change what an old history does.
        """
        try:
            self._check_command(request)
        except ValueError:
            workflow.metric_meter().create_counter(
                "autopilot_commands_refused", "Commands refused by a validator"
            ).add(1, {"operator": self.operator.name, "command": request.command})
            raise

    def _check_command(self, request: CommandRequest) -> None:
        op = self.operator
        if self._spec is None:
            raise ValueError(f"this {op.name} workflow has an invalid spec: {self._spec_error}")
        if op.states[self._state].final:
            raise ValueError(
                f"{op.name} for {self._target.namespace}/{self._target.name} has finished in "
                f"state {self._state}; it accepts no commands"
            )
        rules = getattr(self._spec, "approvers", None)
        if isinstance(rules, ApproverRules):
            target = f"{self._target.namespace}/{self._target.name}"
            why = refusal(rules, request, target)
            if why is not None:
                raise ValueError(why)
        accepted = self._accepted_commands()
        if request.command not in accepted:
            known = "" if request.command in self._all_commands() else " (unknown command)"
            raise ValueError(
                f"'{request.command}'{known} is not accepted in state {self._state}"
                f"{' (paused)' if self._paused else ''}; accepted here: "
                f"{', '.join(accepted) or 'none'}"
            )
        if request.command in BUILTIN_COMMANDS and not self._own(request.command):
            return
        ctx = self._ctx(request)
        options = decision.candidates(self.operator, self._state, Command(request.command))
        if options and decision.choose(self.operator, ctx, Command(request.command)) is None:
            guards = ", ".join(t.guard_name or "" for t in options)
            raise ValueError(
                f"'{request.command}' is not possible in state {self._state} right now "
                f"(conditions not met: {guards})"
            )

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> OperatorStatus:
        """The machine as a human wants to see it."""
        op = self.operator
        state = op.states[self._state]
        return OperatorStatus(
            workflow_id=workflow.info().workflow_id,
            operator=op.name,
            target=self._target,
            state=self._state,
            phase=state.shown_phase,
            final=state.final,
            settled=state.settled,
            outcome=state.outcome,
            paused=self._paused,
            since=self._entered_at,
            timer_due=self._timer_due,
            error=self._error or self._spec_error,
            accepted_commands=[] if state.final else self._accepted_commands(),
            data=self._data.model_dump(mode="json"),
            spec=self._spec.model_dump(mode="json", by_alias=True) if self._spec else {},
            transitions=list(self._transitions),
            commands=list(self._command_log),
            waiting_for=self._waiting_for(),
            details=self._details(),
        )

    def _waiting_for(self) -> list[str]:
        """What a running machine waits for; a Running run never waits for nothing."""
        state = self.operator.states[self._state]
        if state.final:
            return []
        waits: list[str] = []
        if self._working is not None:
            waits.append(f"worker {self._working}")
        if self._internal or self._commands:
            waits.append("its queue (being handled)")
        if self._timer_due is not None:
            waits.append(f"the {self._state} timer, due {self._timer_due.isoformat()}")
        if self._paused:
            waits.append("resume (paused)")
        if self._error is not None:
            waits.append("retry (a worker failed)")
        if state.settled:
            waits.append("a command or a new event (settled)")
        if state.waits_for and self._working is None:
            waits.append(state.waits_for)
        return waits

    # ---------------------------------------------------------------- the loop

    async def run_operator(self, input: OperatorInput) -> OperatorStatus:
        """Drive the machine until a final state; call this from the subclass's run."""
        del input  # already read by __init__
        if self._spec is None:
            raise ApplicationError(
                f"invalid {self.operator.name} spec: {self._spec_error}",
                type=INVALID_SPEC,
                non_retryable=True,
            )
        self._publish()
        if self._is_new:
            await self._enter(self._state)
        while not self.operator.states[self._state].final:
            if self._should_continue_as_new():
                if await self._quiet_for_continue_as_new():
                    workflow.continue_as_new(self._next_input())
                continue
            envelope = await self._next()
            await self._process(envelope)
        self._publish()
        await self._answer_every_command()
        # Alerts of the last transitions ("promotion finished") go out before the run ends:
        # a closed run's pending activities are never started. Only runs that sent alerts
        # (behind ALERTS_PATCH) have any, so older histories end as they did (no wait at
        # all: even an empty wait would let the loop turn once).
        if self._alerting:
            await workflow.wait_condition(lambda: not self._alerting)
        late = self._late_events()
        if late and workflow.patched(CARRY_LATE_EVENTS_PATCH):
            workflow.logger.info(
                "%d event(s) arrived as the machine finished in %s; a new run handles them",
                len(late),
                self._state,
            )
            workflow.continue_as_new(
                OperatorInput(
                    target=self._target,
                    spec=input_spec(self._spec),
                    engine=self._settings,
                    carried=late[-MAX_CARRIED_EVENTS:],
                    first_entry_seq=self._entry_seq,
                )
            )
        return self.status()

    async def _answer_every_command(self) -> None:
        """Answer every command still queued once the machine is final, then let handlers end.

        A command accepted while a worker ran (say ``abort`` during ``Promoting``) may find the
        machine already final when its turn comes: the worker's result is handled first and
        can finish the machine. Its handler waits for an outcome, so without an answer the
        run would stay Running for ever with nothing left to do.
        """
        while True:
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or bool(self._commands)
            )
            if not self._commands:
                return
            while self._commands:
                envelope = self._commands.popleft()
                request = CommandRequest.model_validate(envelope.payload)
                self._record(
                    request,
                    envelope,
                    SUPERSEDED,
                    f"the machine reached {self._state}, a final state, before it could act; "
                    "nothing changed",
                )

    def _late_events(self) -> list[EventEnvelope]:
        """Watcher events still queued at the end that the machine would still act on.

        Each would have started a new run had it arrived a moment later, so it is handed to
        one rather than lost with the finished run (a new revision that arrived while the
        promotion finished). Asked of the initial state with what the machine knows now: an
        event it would ignore (the revision just rolled out, the very event that started
        this run), or that would end a fresh machine at once (a deletion), is dropped; so is
        one this run was handed and did not need, so that runs never hand events on forever.
        """
        op = self.operator
        now: Ctx[Any, Any] = Ctx(
            spec=self._spec, data=self._data, state=op.initial, now=workflow.now()
        )
        late: list[EventEnvelope] = []
        for envelope in self._events:
            model = op.event_models().get(envelope.type)
            if model is None or envelope.id in self._seen or envelope.id in self._carried:
                continue
            try:
                event = model.model_validate(envelope.payload)
            except ValidationError:
                continue
            taken = decision.choose(op, dataclasses.replace(now, event=event), model)
            if taken is not None and (taken.target is None or not op.states[taken.target].final):
                late.append(envelope)
        return late

    async def _quiet_for_continue_as_new(self) -> bool:
        """Let running handlers finish; process commands they queued meanwhile.

        Command handlers wait for their command to be processed, so waiting for
        ``all_handlers_finished`` alone could wait forever on a queued command.
        """
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() or bool(self._internal or self._commands)
        )
        urgent = self._internal or self._commands
        if urgent:
            await self._process(urgent.popleft())
            return False
        # Pending alerts go out before the run is replaced (a closed run's activities are
        # never started); none are pending in runs without alerts, which go on as before
        # (no wait at all: even an empty wait would let the loop turn once).
        if self._alerting:
            await workflow.wait_condition(lambda: not self._alerting)
        return True

    async def _next(self) -> EventEnvelope:
        """Wait for the next item to process, or for the state's timer."""
        while True:
            ready = self._ready_queue()
            if ready is not None:
                return ready.popleft()
            timeout: float | None = None
            if self._timer_due is not None and not self._paused:
                timeout = (self._timer_due - workflow.now()).total_seconds()
                # Asked whatever the sign, so live runs and replays ask at the same points.
                if workflow.patched(ALWAYS_TIMER_PATCH):
                    timeout = max(timeout, DUE_TIMER)
                elif timeout <= 0:
                    return self._timer_fired()
            try:
                await workflow.wait_condition(
                    lambda: self._ready_queue() is not None,
                    timeout=timeout,
                    timeout_summary=f"{self._state} timer" if timeout is not None else None,
                )
            except TimeoutError:
                if self._timer_due is not None and not self._paused:
                    return self._timer_fired()

    def _ready_queue(self) -> deque[EventEnvelope] | None:
        if self._internal:
            return self._internal
        if self._commands:
            return self._commands
        if self._events and not self._paused:
            return self._events
        return None

    def _timer_fired(self) -> EventEnvelope:
        self._timer_due = None
        return EventEnvelope(
            id=f"{self._run_key()}:{self._entry_seq}:timeout",
            type=Timeout.type_name(),
            payload={"state": self._state},
            source="timer",
            observed_at=workflow.now(),
        )

    async def _process(self, envelope: EventEnvelope) -> None:
        if envelope.id in self._seen:
            workflow.logger.info("dropping duplicate event %s", envelope.id)
            if envelope.type.startswith(COMMAND_PREFIX):
                self._record(
                    CommandRequest.model_validate(envelope.payload),
                    envelope,
                    SUPERSEDED,
                    "the same command (same update ID) was already handled",
                )
            return
        self._remember(envelope.id)
        self._events_processed += 1
        self._processed_this_run += 1
        if envelope.type.startswith(COMMAND_PREFIX):
            await self._process_command(envelope)
        else:
            await self._process_event(envelope)

    async def _process_command(self, envelope: EventEnvelope) -> None:
        request = CommandRequest.model_validate(envelope.payload)
        if not self._own(request.command) and request.command in BUILTIN_COMMANDS:
            await self._engine_command(request, envelope)
            return
        transition = decision.choose(self.operator, self._ctx(request), Command(request.command))
        if transition is None:
            workflow.logger.info("command %s no longer applies in %s", request.command, self._state)
            accepted_in = self._accepted_in.get(envelope.id, self._state)
            self._record(
                request,
                envelope,
                SUPERSEDED,
                f"accepted in {accepted_in}, but in {self._state} it no longer applies "
                f"(accepted here: {', '.join(self._accepted_commands()) or 'none'}); "
                "nothing changed",
            )
            return
        target = transition.target or self._state
        self._record(request, envelope, APPLIED, None, now=target)
        await self._take(transition, request, envelope, by=request.by)

    def _record(
        self,
        request: CommandRequest,
        envelope: EventEnvelope,
        outcome: str,
        detail: str | None,
        now: str | None = None,
    ) -> None:
        """Log what came of a command and answer its update with it."""
        record = CommandRecord(
            at=workflow.now(),
            command=request.command,
            by=request.by,
            reason=request.reason,
            state=self._state,
            accepted_in=self._accepted_in.pop(envelope.id, None),
            outcome=outcome,
            detail=detail,
            via=request.via,
        )
        self._command_log.append(record)
        del self._command_log[: -self._settings.keep_records]
        self._outcomes[envelope.id] = record.model_copy(update={"state": now or self._state})

    async def _engine_command(self, request: CommandRequest, envelope: EventEnvelope) -> None:
        now = workflow.now()
        if request.command == "pause" and not self._paused:
            self._paused = True
            if self._timer_due is not None:
                self._paused_remaining = max(0.0, (self._timer_due - now).total_seconds())
                self._timer_due = None
        elif request.command == "resume" and self._paused:
            self._paused = False
            if self._paused_remaining is not None:
                self._timer_due = now + timedelta(seconds=self._paused_remaining)
                self._paused_remaining = None
        self._record(request, envelope, APPLIED, None)
        if request.command == RETRY:
            await self._enter(self._state)
        else:
            self._publish()

    async def _process_event(self, envelope: EventEnvelope) -> None:
        model = self.operator.event_models().get(envelope.type)
        if model is None:
            workflow.logger.warning("ignoring unknown event type %s", envelope.type)
            return
        try:
            event = model.model_validate(envelope.payload)
        except ValidationError as error:
            workflow.logger.warning("ignoring malformed %s: %s", envelope.type, describe(error))
            return
        if isinstance(event, Timeout) and event.state != self._state:
            return
        transition = decision.choose(self.operator, self._ctx(event), model)
        if transition is None:
            if isinstance(event, ActivityFailed):
                self._error = f"{event.activity} failed: {event.message}"
                self._publish()
            elif envelope.source == WORKER_SOURCE and self._waits_for_nothing():
                self._error = (
                    f"{envelope.type} from a worker of {self._state} matched no transition, "
                    "and nothing else would move the machine"
                )
                self._publish()
            return
        await self._take(transition, event, envelope, by=None)

    def _waits_for_nothing(self) -> bool:
        """Whether the machine, as it is, has no timer, no settled flag and no error.

        A worker's result that matched no transition in such a state would leave the run
        Running with nothing to wait for; it is reported as an error, which accepts retry.
        """
        state = self.operator.states[self._state]
        return not (
            state.settled
            or state.waits_for
            or self._timer_due is not None
            or self._paused_remaining is not None
            or self._error is not None
            or self._internal
        )

    async def _take(
        self, transition: TransitionDef, event: Any, envelope: EventEnvelope, by: str | None
    ) -> None:
        before = self._ctx(event)
        self._data = decision.apply(self.operator, transition, before)
        source = self._state
        target = transition.target or source
        self._transitions.append(
            TransitionRecord(
                at=workflow.now(),
                source=source,
                target=target,
                event=envelope.type,
                event_id=envelope.id,
                by=by,
            )
        )
        del self._transitions[: -self._settings.keep_records]
        workflow.metric_meter().create_counter(
            "autopilot_transitions", "State transitions taken"
        ).add(1, {"operator": self.operator.name, "source": source, "target": target})
        self._announce(before, target, envelope)
        if transition.target is None:
            self._publish()
            return
        await self._enter(transition.target)

    async def _enter(self, state: str) -> None:
        op = self.operator
        definition = op.states[state]
        self._state = state
        self._entry_seq += 1
        self._entered_at = workflow.now()
        self._error = None
        self._timer_due = None
        self._paused_remaining = None
        if definition.after is not None:
            after = definition.after
            delay = after(self._ctx()) if callable(after) else after
            if self._paused:
                self._paused_remaining = delay.total_seconds()
            else:
                self._timer_due = self._entered_at + delay
        self._publish()
        returned: list[EventEnvelope] = []
        for ref in definition.run:
            if ref.when is not None and not ref.when(self._ctx()):
                continue
            key = f"{self._run_key()}:{self._entry_seq}:{ref.name}"
            self._working = ref.name
            try:
                result = await self._execute(ref, key)
            except ActivityError as error:
                cause = error.cause or error
                message = cause.message if isinstance(cause, ApplicationError) else str(cause)
                failure = ActivityFailed(activity=ref.name, message=message)
                workflow.metric_meter().create_counter(
                    "autopilot_activity_failures", "Workers that failed after all retries"
                ).add(1, {"operator": op.name, "activity": ref.name})
                returned.append(self._internal_envelope(key, failure))
                break
            finally:
                self._working = None
            if result is not None:
                returned.append(self._internal_envelope(key, result))
        for envelope in reversed(returned):
            self._internal.appendleft(envelope)

    async def _execute(self, ref: ActivityRef, key: str) -> Any:
        step = self._step_model(
            workflow_id=workflow.info().workflow_id,
            target=self._target,
            state=self._state,
            phase=self.operator.states[self._state].shown_phase,
            step_key=key,
            spec=self._spec,
            data=self._data,
        )
        retry = RetryPolicy(
            initial_interval=ref.initial_retry_interval,
            maximum_interval=ref.maximum_retry_interval,
            maximum_attempts=ref.max_attempts,
            non_retryable_error_types=[INVALID_SPEC, NON_RETRYABLE],
        )
        summary = ref.summary or f"{ref.name} in {self._state}"
        if self._runs_locally(ref):
            return await workflow.execute_local_activity(
                ref.name,
                step,
                result_type=ref.returns,
                start_to_close_timeout=ref.timeout,
                retry_policy=retry,
                summary=summary,
            )
        return await workflow.execute_activity(
            ref.name,
            step,
            result_type=ref.returns,
            start_to_close_timeout=ref.timeout,
            heartbeat_timeout=ref.heartbeat_timeout,
            retry_policy=retry,
            summary=summary,
        )

    def _runs_locally(self, ref: ActivityRef) -> bool:
        """Whether ``ref`` runs as a local activity here (see :attr:`ActivityRef.local`).

        The patch is asked only for a worker that would run locally, so histories of
        operators without one keep the commands they had.
        """
        wanted = ref.local(self._ctx()) if callable(ref.local) else ref.local
        return wanted and workflow.patched(LOCAL_WORKERS_PATCH)

    def _announce(self, before: Ctx[Any, Any, Any], target: str, envelope: EventEnvelope) -> None:
        """Start the recorder for each note, and the alerter for each alert, of a transition.

        Started, not awaited: an Event is for people reading the cluster, and writing it
        must never hold the machine up (the recorder is bounded and never fails anyway).
        Each note's occurrence is the handled event's ID, so a retry records it once.
        """
        if self._spec is None:
            return
        after = dataclasses.replace(before, data=self._data, state=target)
        self._record_notes(before, after, envelope)
        self._alert(before, after, envelope)

    def _record_notes(
        self, before: Ctx[Any, Any, Any], after: Ctx[Any, Any, Any], envelope: EventEnvelope
    ) -> None:
        """Start the recorder for each note (a Kubernetes Event) of this transition."""
        op = self.operator
        if op.announce is None or op.recorder is None:
            return
        notes = op.announce(before, after)
        if not notes or not workflow.patched(KUBE_EVENTS_PATCH):
            return
        ref = op.recorder
        for note in notes:
            request = RecordEvent(
                workflow_id=workflow.info().workflow_id,
                target=self._target,
                occurrence=f"{envelope.id}:{note.reason}",
                note=note,
            )
            task = workflow.start_activity(
                ref.name,
                request,
                start_to_close_timeout=ref.timeout,
                heartbeat_timeout=ref.heartbeat_timeout,
                retry_policy=RetryPolicy(
                    initial_interval=ref.initial_retry_interval,
                    maximum_interval=ref.maximum_retry_interval,
                    maximum_attempts=ref.max_attempts,
                ),
                summary=f"Event {note.reason}",
            )
            self._recording.add(task)
            task.add_done_callback(self._recorded)

    def _alert(
        self, before: Ctx[Any, Any, Any], after: Ctx[Any, Any, Any], envelope: EventEnvelope
    ) -> None:
        """Start the alerter for each alert the operator sends for this transition.

        Started, not awaited, like the Event recorder. Only a transition that sends one
        asks for the patch, so histories without alerts replay with the same commands.
        """
        op = self.operator
        if op.alerts is None or op.alerter is None:
            return
        occasion = Occasion(workflow.info().workflow_id, self._target, envelope.id)
        requests = op.alerts(before, after, occasion)
        if not requests or not workflow.patched(ALERTS_PATCH):
            return
        ref = op.alerter
        for request in requests:
            task = workflow.start_activity(
                ref.name,
                request,
                start_to_close_timeout=ref.timeout,
                retry_policy=RetryPolicy(
                    initial_interval=ref.initial_retry_interval,
                    maximum_interval=ref.maximum_retry_interval,
                    maximum_attempts=ref.max_attempts,
                    non_retryable_error_types=[NON_RETRYABLE],
                ),
                summary=ref.summary,
            )
            self._alerting.add(task)
            task.add_done_callback(self._alerted)

    def _alerted(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished alert; its failure is logged, never raised."""
        self._alerting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            workflow.logger.info("an alert was not sent: %s", task.exception())

    def _recorded(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished recorder; its failure is logged, never raised."""
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            workflow.logger.info("an Event was not recorded: %s", task.exception())

    def _internal_envelope(self, key: str, event: BaseModel) -> EventEnvelope:
        return EventEnvelope(
            id=f"{key}:{type(event).__name__}",
            type=type(event).__name__,
            payload=event.model_dump(mode="json"),
            source=WORKER_SOURCE,
            observed_at=workflow.now(),
        )

    # ---------------------------------------------------------------- helpers

    def _queue_for(self, envelope: EventEnvelope) -> deque[EventEnvelope]:
        if envelope.source == WORKER_SOURCE:
            return self._internal
        if envelope.type.startswith(COMMAND_PREFIX):
            return self._commands
        return self._events

    def _ctx(self, event: Any = None) -> Ctx[Any, Any]:
        return Ctx(
            spec=self._spec, data=self._data, state=self._state, now=workflow.now(), event=event
        )

    def _own(self, command: str) -> bool:
        """Whether the operator declares ``command`` itself in the current state."""
        return bool(decision.candidates(self.operator, self._state, Command(command)))

    def _all_commands(self) -> list[str]:
        return [*self.operator.commands(), RETRY]

    def _accepted_commands(self) -> list[str]:
        accepted = set(self.operator.commands_in(self._state, paused=self._paused))
        if self._error is not None:
            accepted.add(RETRY)
        return sorted(accepted)

    def _remember(self, event_id: str) -> None:
        if len(self._seen_order) == self._seen_order.maxlen:
            self._seen.discard(self._seen_order[0])
        self._seen_order.append(event_id)
        self._seen.add(event_id)

    def _run_key(self) -> str:
        return workflow.info().first_execution_run_id

    def _details(self) -> str:
        op = self.operator
        lines = [
            f"**{op.name}** `{self._target.namespace}/{self._target.name}`",
            f"state: **{self._state}**{' (paused)' if self._paused else ''}",
        ]
        if self._error:
            lines.append(f"error: {self._error}")
        if op.details is not None and self._spec is not None:
            lines.append(op.details(self._ctx()))
        accepted = [] if op.states[self._state].final else self._accepted_commands()
        if accepted:
            lines.append("commands: " + ", ".join(accepted))
        return "\n\n".join(lines)

    def _publish(self) -> None:
        """Upsert search attributes and current details when they changed."""
        op = self.operator
        values: dict[str, Any] = {
            "AutopilotOperator": op.name,
            "AutopilotTarget": f"{self._target.namespace}/{self._target.name}",
            "AutopilotNamespace": self._target.namespace,
            "AutopilotState": self._state,
            "AutopilotPaused": self._paused,
        }
        if self._spec is not None:
            for name, value_of in op.search_attributes.items():
                values[name] = value_of(self._ctx())
        changed = [
            _key(name).value_set(value)
            for name, value in values.items()
            if self._published.get(name) != value
        ]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published.update(values)
        details = self._details()
        if self._published.get("__details") != details:
            workflow.set_current_details(details)
            self._published["__details"] = details

    def _should_continue_as_new(self) -> bool:
        """Whether this run should hand over to a new one before the next item.

        Temporal suggests it only past its own threshold, and a run that waits at a gate for
        hours while analysing every minute passes that within a day; the engine's bound
        keeps every run's history short whatever the server is configured to suggest.
        """
        limit = self._settings.continue_as_new_after
        if limit is not None and self._processed_this_run >= limit:
            return True
        info = workflow.info()
        # The patch is asked for only past the bound, so shorter runs record no marker.
        past_bound = info.get_current_history_length() >= self._settings.history_event_limit
        if past_bound and workflow.patched(HISTORY_BOUND_PATCH):
            return True
        return info.is_continue_as_new_suggested()

    def _next_input(self) -> OperatorInput:
        pending = [*self._internal, *self._commands, *self._events]
        snapshot = MachineSnapshot(
            state=self._state,
            data=self._data.model_dump(mode="json"),
            entered_at=self._entered_at,
            entry_seq=self._entry_seq,
            timer_due=self._timer_due,
            paused=self._paused,
            paused_timer_remaining_s=self._paused_remaining,
            error=self._error,
            seen_event_ids=list(self._seen_order),
            pending=pending,
            transitions=self._transitions,
            commands=self._command_log,
            events_processed=self._events_processed,
            runs=self._runs + 1,
        )
        return OperatorInput(
            target=self._target,
            spec=input_spec(self._spec),
            resume=snapshot,
            engine=self._settings,
        )


def input_spec(spec: BaseModel | None) -> dict[str, Any]:
    """The spec as the next run's input carries it (by alias, as users write it)."""
    assert spec is not None, "a run with an invalid spec never continues"
    return spec.model_dump(mode="json", by_alias=True)
