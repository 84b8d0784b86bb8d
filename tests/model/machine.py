"""The engine's model test: arbitrary interleavings against real operator workflows.

A hypothesis state machine plays the world around two operator workflows at a time
(canary, quarantine and the drill of ``drill_operator.py``) on a real Temporal server: it
starts them as the watchers do, sends watcher events (duplicates included), answers or
fails their workers in any order (``script.py`` holds every call open), lets their timers
fire, and gives every command each operator knows (``pause``, ``resume`` and ``retry``
too) whether or not the state accepts it; refusals are expected and counted.

After every step it waits until nothing moves (no workflow task pending, every pending
activity one of the held calls) and checks, for every run:

* a run still running waits for something: a worker, a timer, a human (a settled state,
  a pause, an error that ``retry`` clears); it is in a final state only while that
  state's own workers run;
* every command the validator accepted has an outcome once nothing runs that could
  still give it one (its update completed in history);
* status and history agree: the state and pause flag published as search attributes,
  the last transition, the accepted and completed updates, the command log.

When an example ends, every history it produced (every run of a continue-as-new chain)
is replayed with the worker's sandbox; a replay failure fails the example.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from models.operator import EVENT_SIGNAL
from tests.model.checks import problems
from tests.model.script import Call
from tests.model.subjects import SUBJECTS, envelope
from tests.model.world import (
    Run,
    World,
    catch_up,
    collect_receipts,
    due_soon,
    finish,
    give_command,
    respond,
    settle,
    start,
    timer_fires,
)

T = TypeVar("T")

#: Runs open at once (their workers interleave); a run that ends makes room for another.
MAX_OPEN = 2
#: A worker answer is drawn from 0..ANSWER_CHOICES; the last one means "fail".
ANSWER_CHOICES = 7
#: Draws of luck (0..15) a cluster catching up takes; :func:`catch_up` says what they mean.
LUCK = 16
CATCH_UP = "a healthy cluster catches up"
ANSWER = "a worker answers"
COMMAND = "a human gives a command"
EVENT = "a watcher sends an event"
TIME = "time passes"
START = "another run starts"
#: What the world does next, each as often as it is listed (shrinking prefers the first).
ACTIONS: tuple[str, ...] = (CATCH_UP, CATCH_UP, CATCH_UP, ANSWER, ANSWER, ANSWER)
ACTIONS += (COMMAND, COMMAND, EVENT, EVENT, TIME, START)
#: Timers of a new run: short ones (about a second) carry a canary into its deep states;
#: long ones never fire during a test, so an example of those replays exactly.
TIMERS = st.sampled_from(("short", "short", "short", "long"))
#: Temporal refuses more than 10 updates in flight per workflow (ResourceExhausted); the
#: model gives no more commands to a run that has this many waiting for their outcome.
MAX_IN_FLIGHT = 8


class EngineModel(RuleBasedStateMachine):
    """The world around the engine, as a hypothesis state machine (see the module doc)."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.runs: list[Run] = []
        world.stats.examples += 1

    # ------------------------------------------------------------------ rules
    #
    # One rule draws what the world does next, each action as often as it appears in
    # ACTIONS. (Separate rules would let hypothesis's swarm testing switch most of them
    # off in an example, which costs too much with a server behind every step.) What an
    # action draws never depends on the servers: a short timer may fire at any moment, and
    # draws that followed it would differ between two runs of the same example
    # (FlakyStrategyDefinition). An action with nothing to act on notes so, and waits.

    @initialize(data=st.data())
    def first_run(self, data: st.DataObject) -> None:
        self._start(data)

    @rule(action=st.sampled_from(ACTIONS), data=st.data())
    def world_acts(self, action: str, data: st.DataObject) -> None:
        acts: dict[str, Callable[[st.DataObject], None]] = {
            CATCH_UP: self._catch_up,
            ANSWER: self._answer,
            COMMAND: self._command,
            EVENT: self._event,
            TIME: self._time_passes,
            START: self._start,
        }
        acts[action](data)

    def _start(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(sorted(SUBJECTS)), label="operator")
        subject = SUBJECTS[kind]
        variant = data.draw(st.integers(0, len(subject.variants) - 1), label="variant")
        short_timers = data.draw(TIMERS, label="timers") == "short"
        short_history = data.draw(st.booleans(), label="continue-as-new often")
        if len(self._open()) >= MAX_OPEN:
            self._idle(f"no new run: {MAX_OPEN} are open")
            return
        run = self._step(
            lambda: start(
                self.world,
                subject,
                variant,
                subject.variants[variant],
                short_timers,
                short_history,
            )
        )
        self.runs.append(run)
        self.world.stats.runs += 1
        note(f"start {run}")

    def _event(self, data: st.DataObject) -> None:
        which = data.draw(st.integers(0, MAX_OPEN - 1), label="run")
        event = data.draw(st.integers(0, 7), label="event")
        copy = data.draw(st.integers(0, 1), label="event id")
        if not self._open():
            self._idle("no watcher event: every run has ended")
            return
        run = self._pick(self._open(), which)
        chosen = run.subject.events[event % len(run.subject.events)]
        if chosen.revision is not None:
            run.cluster.revision = chosen.revision
        sent = envelope(chosen.make(run.target), f"{chosen.label}#{copy}")
        note(f"{run.workflow_id}: watcher sends {chosen.label} (id {sent.id})")
        self.world.stats.events += 1
        self._step(lambda: run.handle.signal(EVENT_SIGNAL, sent))

    def _catch_up(self, data: st.DataObject) -> None:
        """The cluster works on one run for a few rounds: every waiting worker answers,
        mostly as a healthy cluster would (the first answer of its menu), now and then
        otherwise or with a failure; a timer due soon fires. What carries a run deep."""
        which = data.draw(st.integers(0, MAX_OPEN - 1), label="run")
        rounds = data.draw(st.sampled_from((1, 2, 4, 8, 12)), label="rounds")
        luck = data.draw(st.lists(st.integers(0, 15), min_size=LUCK, max_size=LUCK), label="luck")
        if not self._open():
            self._idle("no worker answers: every run has ended")
            return
        run = self._pick(self._open(), which)
        happened = self._step(lambda: catch_up(self.world, run, rounds, luck))
        for line in happened or ["nothing to answer"]:
            note(f"{run.workflow_id}: {line}")

    def _answer(self, data: st.DataObject) -> None:
        """One waiting worker answers anything on its menu, or fails."""
        pick = data.draw(st.integers(0, 15), label="worker")
        choice = data.draw(st.integers(0, ANSWER_CHOICES), label="answer")
        if not self._waiting():
            self._idle("no worker answers: none is running")
            return
        call = self._pick(self._waiting(), pick)
        run = next(r for r in self.runs if r.workflow_id == call.workflow_id)
        index = None if choice == ANSWER_CHOICES else choice
        note(f"{run.workflow_id}: {self._step(lambda: respond(self.world, run, call, index))}")

    def _command(self, data: st.DataObject) -> None:
        """A human gives any command the operator knows, accepted here or not."""
        which = data.draw(st.integers(0, MAX_OPEN - 1), label="run")
        command = data.draw(st.integers(0, 7), label="command")
        if not self._open():
            self._idle("no command: every run has ended")
            return
        run = self._pick(self._open(), which)
        name = run.subject.commands[command % len(run.subject.commands)]
        state = run.observed.status.state if run.observed and run.observed.status else "?"
        if len(run.in_flight()) >= MAX_IN_FLIGHT:
            self._idle(f"{run.workflow_id}: {name} not sent, {MAX_IN_FLIGHT} are in flight")
            return
        self.world.stats.commands += 1
        update_id = f"{name}-{uuid.uuid4().hex[:10]}"
        refusal = self._step(lambda: give_command(run, name, update_id))
        if refusal is None:
            self.world.stats.accepted += 1
            note(f"{run.workflow_id}: {name} in {state} accepted ({update_id})")
        else:
            note(f"{run.workflow_id}: {name} in {state} refused: {refusal}")

    def _time_passes(self, data: st.DataObject) -> None:
        """Wait for the next timer of a run that has nothing else to do (short ones only)."""
        due = [(d, r) for r in self._open() if (d := due_soon(r)) is not None]
        if not due:
            self._idle("no timer is due soon")
            return
        when, run = min(due, key=lambda item: item[0])
        assert run.observed and run.observed.status
        note(f"{run.workflow_id}: the timer of {run.observed.status.state} fires")
        self.world.stats.timers += 1
        self._step(lambda: timer_fires(self.world, run, when))

    # ------------------------------------------------------------- invariants

    @invariant()
    def every_run_waits_for_something_answers_every_command_and_agrees_with_history(
        self,
    ) -> None:
        try:
            found: list[str] = []
            for run in self.runs:
                if run.done:
                    continue
                observation = self.world.run(partial(settle, self.world, run))
                run.observed = observation
                receipts = self.world.run(partial(collect_receipts, run, observation))
                found += [f"{run}: {p}" for p in problems(run, observation, receipts)]
                if not observation.running:
                    run.done = True
            assert not found, "\n".join(found)
        except AssertionError:
            self.world.stats.failed()
            raise

    def teardown(self) -> None:
        for run in self.runs:
            self.world.stats.entered(run)
        failures = self.world.run(lambda: finish(self.world, self.runs))
        if failures:
            self.world.stats.failed()
        assert not failures, "\n".join(failures)

    # --------------------------------------------------------------- helpers

    def _idle(self, why: str) -> None:
        note(f"({why})")
        self.world.stats.steps += 1
        self.world.stats.idle += 1

    def _step(self, make: Callable[[], Awaitable[T]]) -> T:
        self.world.stats.steps += 1
        return self.world.run(make)

    def _open(self) -> list[Run]:
        return [r for r in self.runs if not r.done]

    def _waiting(self) -> list[Call]:
        return [c for r in self._open() if r.observed for c in r.observed.waiting]

    @staticmethod
    def _pick(items: list[T], index: int) -> T:
        return items[index % len(items)]


# ====================================================================== running it


def model_settings(examples: int, steps: int, *, derandomize: bool = True) -> settings:
    """Hypothesis settings for the model: no deadline (servers are slow), no database."""
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


async def run_model(world: World, chosen: settings) -> None:
    """Run the state machine under ``chosen`` settings, from a thread of its own."""
    await asyncio.to_thread(
        run_state_machine_as_test,
        lambda: EngineModel(world),  # type: ignore[arg-type]
        settings=chosen,
    )
