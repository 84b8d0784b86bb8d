"""The world of the engine's model test: runs, what is known of them, and how to see them.

Everything here runs on the worker's event loop (:class:`World` carries calls onto it from
the thread hypothesis drives the state machine in). The central idea is *settling*: after
every step the model waits until nothing moves in a run (no workflow task pending, every
pending activity one of the calls :mod:`tests.model.script` holds open) and only then
observes it, so the checks of :mod:`tests.model.checks` see a state the run may stay in
for ever. A run's short timer may still fire at any moment; an observation is taken again
when the run moved while it was being read.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError
from temporalio.worker import Worker

from models.operator import (
    COMMAND_UPDATE,
    EVENT_SIGNAL,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    EngineSettings,
    OperatorInput,
    OperatorStatus,
    Target,
)
from tests.model.script import Answer, Call, Dropped, Failure, Script
from tests.model.subjects import NAMESPACE, SUBJECTS, Cluster, Subject, envelope
from tests.replay import replay_failure
from tests.waiting import eventually
from worker_main import make_worker

T = TypeVar("T")

#: Continue-as-new after this many processed events, for runs that draw it.
SHORT_HISTORY = 4
#: Timers the model waits for are due within this many seconds (long ones never are), and
#: how late one may fire before the model calls it lost.
TIMER_HORIZON_S = 5.0
TIMER_LATE_S = 15.0


@dataclass
class Stats:
    """What the model test tried, for its report."""

    examples: int = 0
    steps: int = 0
    runs: int = 0
    events: int = 0
    answers: int = 0
    failures: int = 0
    timers: int = 0
    commands: int = 0
    accepted: int = 0
    continued_as_new: int = 0
    histories_replayed: int = 0
    idle: int = 0
    started: float = field(default_factory=time.monotonic)
    #: "example N, step M, after S s" when an invariant first failed (before shrinking).
    first_failure: str | None = None
    #: How many runs entered each state, as ``operator/state``.
    states: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        seconds = time.monotonic() - self.started
        found = f"; first failure at {self.first_failure}" if self.first_failure else ""
        return (
            f"{self.examples} examples, {self.steps} steps ({self.idle} with nothing to do) in "
            f"{seconds:.0f} s: {self.runs} runs, "
            f"{self.events} watcher events, {self.answers} worker answers ({self.failures} "
            f"failures), {self.timers} timer waits, {self.commands} commands "
            f"({self.accepted} accepted), {self.continued_as_new} continue-as-new, "
            f"{self.histories_replayed} histories replayed{found}"
        )

    def coverage(self) -> str:
        """States reached, per operator, with how many runs entered each."""
        lines = []
        for operator in sorted(SUBJECTS):
            runs = ", ".join(
                f"{n} {k.split(' ', 2)[-1]}"
                for k, n in self.states.items()
                if k.startswith(f"{operator} ")
            )
            lines.append(f"{operator} runs: {runs or 'none'}")
            seen = {
                k.split("/", 1)[1]: n
                for k, n in self.states.items()
                if k.startswith(f"{operator}/")
            }
            missing = sorted(set(SUBJECTS[operator].operator.states) - set(seen))
            reached = ", ".join(f"{state} {n}" for state, n in sorted(seen.items()))
            lines.append(
                f"{operator}: {reached}" + (f" (never: {', '.join(missing)})" if missing else "")
            )
        return "\n".join(lines)

    def entered(self, run: Run) -> None:
        """Count the states ``run`` went through (as far as its status remembers)."""
        status = run.observed.status if run.observed else None
        if status is None:
            return
        states = {run.subject.operator.initial, status.state}
        states.update(t.target for t in status.transitions)
        self.states.update(f"{run.subject.name}/{state}" for state in states)
        self.states[
            f"{run.subject.name} runs with {'short' if run.short_timers else 'long'} timers"
        ] += 1

    def failed(self) -> None:
        if self.first_failure is None:
            seconds = time.monotonic() - self.started
            self.first_failure = (
                f"example {self.examples}, step {self.steps}, after {seconds:.0f} s"
            )


class World:
    """The event loop the worker runs on, its client and task queue, and the script.

    Hypothesis drives the state machine from a thread of its own; every call into
    Temporal or the script goes through :meth:`run`, onto the worker's loop.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: Client, task_queue: str, script: Script
    ) -> None:
        self.loop = loop
        self.client = client
        self.task_queue = task_queue
        self.script = script
        self.stats = Stats()
        #: The runs :func:`start` made, by workflow ID.
        self.runs: dict[str, Run] = {}
        #: The draws of luck of a run catching up, which its local calls meanwhile take.
        self.luck: dict[str, Iterator[int]] = {}
        #: What each run's local calls answered, until :func:`catch_up` tells it.
        self.answered_locally: dict[str, list[str]] = {}
        script.answer_locally = self.answer_locally

    def answer_locally(self, call: Call) -> Answer:
        """Answer a local activity's call at once, by the next draw of its run's luck (none
        left: the healthy answer): 15 fails it, 12 to 14 give the second to fourth answer
        of its menu, anything else the first. (No rule can answer it later: it runs inside
        a workflow task.)"""
        run = self.runs.get(call.workflow_id)
        if run is None:
            return Dropped()
        value = next(self.luck.get(call.workflow_id, iter(())), 0)
        index = None if value == 15 else value - 11 if value >= 12 else 0
        answer, said = scripted_answer(self, run, call, index)
        self.answered_locally.setdefault(call.workflow_id, []).append(f"{said} (local)")
        return answer

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 180.0) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)


def model_worker(client: Client, script: Script, task_queue: str | None = None) -> Worker:
    """A worker for every subject's workflow, with the script's activities."""
    return make_worker(
        client,
        task_queue or f"model-{uuid.uuid4().hex[:8]}",
        [s.workflow for s in SUBJECTS.values()],
        script.activities(),
    )


@dataclass
class Observation:
    """One run, seen while nothing moves."""

    position: tuple[Any, ...]
    running: bool
    status: OperatorStatus | None
    failure: str | None
    waiting: list[Call]
    histories: list[WorkflowHistory]

    def events(self, histories: list[WorkflowHistory] | None = None) -> list[Any]:
        return [e for h in (self.histories if histories is None else histories) for e in h.events]

    def machine_histories(self) -> list[WorkflowHistory]:
        """The histories of the current machine: since the last run that started fresh.

        A run that continues as new carries the machine on (its input resumes a snapshot); a
        run that finished with watcher events still to handle hands them to a fresh machine,
        which starts with an empty transition and command log.
        """
        fresh = 0
        for index, history in enumerate(self.histories):
            started = history.events[0].workflow_execution_started_event_attributes
            payloads = started.input.payloads
            if not payloads or json.loads(payloads[0].data).get("resume") is None:
                fresh = index
        return self.histories[fresh:]

    def updates(self, kind: str, histories: list[WorkflowHistory] | None = None) -> set[str]:
        """IDs of updates accepted (``accepted``) or completed (``completed``) in history
        (in ``histories``, by default every run's)."""
        found = set()
        for event in self.events(histories):
            if kind == "accepted" and event.HasField(
                "workflow_execution_update_accepted_event_attributes"
            ):
                attributes = event.workflow_execution_update_accepted_event_attributes
                found.add(attributes.accepted_request.meta.update_id)
            if kind == "completed" and event.HasField(
                "workflow_execution_update_completed_event_attributes"
            ):
                found.add(event.workflow_execution_update_completed_event_attributes.meta.update_id)
        return found

    def published(self, name: str) -> Any:
        """The last value of search attribute ``name`` the latest run upserted."""
        value = None
        for event in self.histories[-1].events:
            if event.HasField("upsert_workflow_search_attributes_event_attributes"):
                fields = event.upsert_workflow_search_attributes_event_attributes
                payload = fields.search_attributes.indexed_fields.get(name)
                if payload is not None:
                    value = json.loads(payload.data)
        return value


@dataclass
class Run:
    """One operator workflow the model started, and what it knows about it."""

    subject: Subject
    target: Target
    handle: WorkflowHandle[Any, OperatorStatus]
    first_run_id: str
    variant: str
    short_timers: bool
    short_history: bool
    cluster: Cluster
    accepted: dict[str, str] = field(default_factory=dict)
    updates: dict[str, WorkflowUpdateHandle[CommandReceipt]] = field(default_factory=dict)
    receipts: dict[str, CommandReceipt | str] = field(default_factory=dict)
    closed_histories: dict[str, WorkflowHistory] = field(default_factory=dict)
    observed: Observation | None = None
    done: bool = False

    @property
    def workflow_id(self) -> str:
        return self.handle.id

    def in_flight(self) -> set[str]:
        """Accepted commands whose outcome the last observation did not see."""
        completed = self.observed.updates("completed") if self.observed else set()
        return set(self.accepted) - completed

    def __str__(self) -> str:
        timers = "short" if self.short_timers else "long"
        history = f", continue-as-new every {SHORT_HISTORY}" if self.short_history else ""
        return f"{self.workflow_id} ({self.variant}, {timers} timers{history})"


async def start(
    world: World,
    subject: Subject,
    variant: int,
    variant_name: str,
    short_timers: bool,
    short_history: bool,
) -> Run:
    """Start ``subject`` with signal-with-start of its start event, as a watcher would."""
    target = Target(namespace=NAMESPACE, name=f"{subject.name[0]}-{uuid.uuid4().hex[:10]}")
    cluster = Cluster()
    if subject.start.revision is not None:
        cluster.revision = subject.start.revision
    first = envelope(subject.start.make(target), f"{subject.start.label}#0")
    engine = EngineSettings(continue_as_new_after=SHORT_HISTORY if short_history else None)
    started = await world.client.start_workflow(
        subject.name,
        OperatorInput(
            target=target, spec=subject.spec(target, variant, short_timers), engine=engine
        ),
        id=target.workflow_id(subject.name),
        task_queue=world.task_queue,
        start_signal=EVENT_SIGNAL,
        start_signal_args=[first],
        result_type=OperatorStatus,
    )
    assert started.first_execution_run_id is not None
    run = Run(
        subject=subject,
        target=target,
        handle=world.client.get_workflow_handle(started.id, result_type=OperatorStatus),
        first_run_id=started.first_execution_run_id,
        variant=variant_name,
        short_timers=short_timers,
        short_history=short_history,
        cluster=cluster,
    )
    world.runs[run.workflow_id] = run
    return run


async def give_command(run: Run, name: str, update_id: str) -> str | None:
    """Send command ``name`` as the CLI does; None if accepted, else why it was refused."""
    request = CommandRequest(command=name, by="model", reason="model test")
    try:
        handle = await run.handle.start_update(
            COMMAND_UPDATE,
            request,
            id=update_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=CommandReceipt,
        )
    except RPCError as refused:
        return f"the server refused the update: {refused}"
    # A refusal by the validator comes back at once as the update's outcome; the handle
    # keeps it (the SDK has no public way to tell it from an answer).
    known = handle._known_outcome
    if known is not None and known.HasField("failure"):
        try:
            await handle.result()
        except WorkflowUpdateFailedError as refused:
            return str(refused.cause or refused)
    run.updates[update_id] = handle
    run.accepted[update_id] = name
    return None


def scripted_answer(world: World, run: Run, call: Call, index: int | None) -> tuple[Answer, str]:
    """Answer ``index`` of the call's menu (modulo its length), or a failure; and what
    happened, in words."""
    world.stats.answers += 1
    if index is None:
        world.stats.failures += 1
        return Failure(f"{call.name} failed (model test)"), f"{call.name} in {call.state} fails"
    menu = run.subject.answers_for(call.name)
    answer = menu[index % len(menu)]
    said = f"{call.name} in {call.state} answers {answer.label}"
    return answer.make(call.step, run.cluster), said


async def respond(world: World, run: Run, call: Call, index: int | None) -> str:
    """Let ``call`` return answer ``index`` of its menu (modulo its length), or fail."""
    answer, said = scripted_answer(world, run, call, index)
    world.script.answer(call, answer)
    return said


async def catch_up(world: World, run: Run, rounds: int, luck: list[int]) -> list[str]:
    """Up to ``rounds`` times: answer every waiting worker of ``run``, or wait for its timer
    when it is due soon; say what happened.

    Each answer takes the next draw of ``luck`` (0..15): 15 fails the worker, 14 gives the
    second answer of its menu, anything else (and every answer past the draws) the first,
    healthy one.
    """
    happened: list[str] = []
    draws = iter(luck)
    world.luck[run.workflow_id] = draws  # its local calls take the same draws
    try:
        await _catch_up(world, run, rounds, draws, happened)
    finally:
        world.luck.pop(run.workflow_id, None)
    return happened


async def _catch_up(
    world: World, run: Run, rounds: int, draws: Iterator[int], happened: list[str]
) -> None:
    for _ in range(rounds):
        run.observed = await settle(world, run)
        happened.extend(world.answered_locally.pop(run.workflow_id, []))
        due = due_soon(run)
        if run.observed.waiting:
            for call in run.observed.waiting:
                value = next(draws, 0)
                index = 0 if value < 14 else None if value == 15 else 1
                happened.append(await respond(world, run, call, index))
        elif due is not None and run.observed.status is not None:
            happened.append(f"the timer of {run.observed.status.state} fires")
            world.stats.timers += 1
            await timer_fires(world, run, due)
        else:
            break


def due_soon(run: Run) -> datetime | None:
    """When the timer of ``run`` fires, if soon and nothing else must happen first."""
    seen = run.observed
    if run.done or seen is None or seen.status is None or seen.waiting:
        return None
    due = seen.status.timer_due
    horizon = datetime.now(UTC) + timedelta(seconds=TIMER_HORIZON_S)
    return due if due is not None and due < horizon else None


async def timer_fires(world: World, run: Run, due: datetime) -> None:
    """Wait until the timer of ``run`` due at ``due`` has fired and moved the run.

    The dev server fires timers up to about a second late; one that has not fired
    :data:`TIMER_LATE_S` after it was due never will, and that is a failure.
    """
    await asyncio.sleep(max(0.0, min((due - datetime.now(UTC)).total_seconds(), TIMER_HORIZON_S)))
    assert run.observed is not None
    before = run.observed.position

    async def moved() -> bool:
        description, _ = await quiet(world, run)
        return position_of(description) != before

    await eventually(
        moved,
        attempts=int(TIMER_LATE_S / 0.1),
        pause=0.1,
        what=f"{run}: the timer due at {due.isoformat(timespec='milliseconds')} to fire",
    )


async def quiet(world: World, run: Run) -> tuple[WorkflowExecutionDescription, str | None]:
    """The run's description, and why it is still moving (None once it is not)."""
    description = await run.handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        return description, None
    raw = description.raw_description
    if raw.HasField("pending_workflow_task"):
        task = raw.pending_workflow_task
        return description, f"a workflow task is pending (attempt {task.attempt})"
    for pending in raw.pending_activities:
        held = world.script.holds(
            run.workflow_id, description.run_id, pending.activity_id, pending.attempt
        )
        if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED or not held:
            state = PendingActivityState.Name(pending.state)
            return description, (
                f"activity {pending.activity_type.name} #{pending.activity_id} attempt "
                f"{pending.attempt} is {state} and not yet held"
            )
    return description, None


async def histories(world: World, run: Run) -> list[WorkflowHistory]:
    """Every run's history of the workflow, first to latest (continue-as-new followed)."""
    found = []
    run_id: str | None = run.first_run_id
    while run_id:
        history = run.closed_histories.get(run_id)
        if history is None:
            handle = world.client.get_workflow_handle(run.workflow_id, run_id=run_id)
            history = await handle.fetch_history()
        found.append(history)
        last = history.events[-1]
        run_id = None
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if history.run_id not in run.closed_histories:
                world.stats.continued_as_new += 1
            run.closed_histories[history.run_id] = history
    return found


def position_of(description: WorkflowExecutionDescription) -> tuple[Any, ...]:
    """Which run, how far its history has come, and which activity attempts it waits for."""
    raw = description.raw_description
    attempts = sorted((p.activity_id, p.attempt) for p in raw.pending_activities)
    return description.run_id, raw.workflow_execution_info.history_length, *attempts


async def settle(world: World, run: Run) -> Observation:
    """Wait until nothing moves in ``run``; observe it while it stays still.

    A run whose history has not grown since it was last observed is still what was
    observed then (nothing but history changes a workflow), so it is not read again.
    """
    for _ in range(10):
        description, _why = await eventually(
            lambda: quiet(world, run),
            lambda seen: seen[1] is None,
            attempts=1000,
            pause=0.02,
            what=f"{run} to settle",
        )
        position = position_of(description)
        if run.observed is not None and run.observed.position == position:
            return run.observed
        observation = await observe(world, run, description)
        if position_of(await run.handle.describe()) == position:
            return observation
    raise AssertionError(f"{run} never stayed still long enough to be observed")


async def observe(world: World, run: Run, description: WorkflowExecutionDescription) -> Observation:
    running = description.status == WorkflowExecutionStatus.RUNNING
    status: OperatorStatus | None = None
    failure = None
    if running:
        status = await run.handle.query(STATUS_QUERY, result_type=OperatorStatus)
    else:
        try:
            status = await run.handle.result()
        except WorkflowFailureError as error:
            ended = description.status.name if description.status else "?"
            failure = f"the workflow ended {ended}: {error.cause or error}"
    return Observation(
        position=position_of(description),
        running=running,
        status=status,
        failure=failure,
        waiting=list(world.script.waiting(run.workflow_id)) if running else [],
        histories=await histories(world, run),
    )


async def collect_receipts(run: Run, observation: Observation) -> dict[str, CommandReceipt | str]:
    """The answer of every completed command update (fetched once each)."""
    for update_id in observation.updates("completed") - set(run.receipts):
        handle = run.updates.get(update_id)
        if handle is None:
            continue
        try:
            run.receipts[update_id] = await handle.result(rpc_timeout=timedelta(seconds=10))
        except (WorkflowUpdateFailedError, RPCError) as error:
            run.receipts[update_id] = f"failed: {getattr(error, 'cause', None) or error}"
    return run.receipts


async def finish(world: World, runs: list[Run]) -> list[str]:
    """End an example: stop what still runs, free its held calls, replay every history."""
    for run in runs:
        description = await run.handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            await run.handle.terminate("model example over")
        world.script.release(run.workflow_id)
    failures = []
    for run in runs:
        for history in await histories(world, run):
            world.stats.histories_replayed += 1
            failure = await replay_failure(run.subject.workflow, run.workflow_id, history.to_json())
            if failure is not None:
                failures.append(f"{run}: run {history.run_id} does not replay: {failure}")
    return failures
