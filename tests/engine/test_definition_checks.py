"""A broken operator definition is refused when loaded, with the state or event named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from workflows.engine import Command, DefinitionError, Event, Operator


class Spec(BaseModel):
    pass


class Data(BaseModel):
    count: int = 0


class Ping(Event):
    pass


def machine() -> Operator[Spec, Data]:
    return Operator("m", spec=Spec, data=Data, initial="A")


def refusal(op: Operator[Any, Any]) -> str:
    with pytest.raises(DefinitionError) as refused:
        op.check()
    return str(refused.value)


def test_a_valid_machine_passes_its_checks():
    op = machine()
    op.state("A", settled=True)
    op.state("B", final=True)
    op.on("A", Ping, go="B")
    assert op.check() is op


def test_an_unreachable_state_is_refused_by_name():
    op = machine()
    op.state("A", settled=True)
    op.state("Orphan", settled=True)
    op.state("Done", final=True)
    op.on("A", Ping, go="Done")
    op.on("Orphan", Ping, go="Done")
    assert "state 'Orphan' is unreachable from the initial state 'A'" in refusal(op)


def test_a_machine_without_a_final_state_is_refused():
    op = machine()
    op.state("A", settled=True)
    op.state("B", settled=True)
    op.on("A", Ping, go="B")
    op.on("B", Ping, go="A")
    message = refusal(op)
    assert "no state is final" in message


def test_a_state_with_no_path_to_a_final_state_is_refused_by_name():
    op = machine()
    op.state("A", settled=True)
    op.state("Trap", settled=True)
    op.state("Done", final=True)
    op.on("A", Ping, go="Trap", when=lambda ctx: True)
    op.on("A", Ping, go="Done")
    op.on("Trap", Ping, go="Trap")
    assert "state 'Trap' has no path to a final state" in refusal(op)


def test_an_unguarded_transition_that_hides_later_ones_is_refused():
    op = machine()
    op.state("A", settled=True)
    op.state("B", final=True)
    op.state("C", final=True)
    op.on("A", Ping, go="B")
    op.on("A", Ping, go="C")
    message = refusal(op)
    assert "in state 'A' on Ping: the transition to 'B' has no guard" in message


def test_a_transition_to_an_unknown_state_is_refused_by_name():
    op = machine()
    op.state("A", settled=True)
    op.state("B", final=True)
    op.on("A", Ping, go="Nowhere")
    assert "goes to unknown state 'Nowhere'" in refusal(op)


def test_a_timer_nobody_handles_is_refused():
    op = machine()
    op.state("A", after=timedelta(minutes=1))
    op.state("B", final=True)
    op.on("A", Ping, go="B")
    assert "state 'A' starts a timer but no transition handles Timeout" in refusal(op)


def test_a_command_only_final_states_would_take_is_refused():
    op = machine()
    op.state("A", settled=True)
    op.state("B", final=True)
    op.on("A", Ping, go="B")
    op.on("B", Command("approve"), go="A")
    message = refusal(op)
    assert "final state 'B' has outgoing transitions" in message
    assert "command 'approve' is accepted in no state" in message


def test_data_without_defaults_is_refused():
    class Strict(BaseModel):
        needed: int

    op = Operator("m", spec=Spec, data=Strict, initial="A")
    op.state("A", settled=True)
    op.state("B", final=True)
    op.on("A", Ping, go="B")
    assert "data model Strict needs a default for: needed" in refusal(op)


def test_pause_is_reserved_for_the_engine():
    op = machine()
    op.state("A", settled=True)
    op.state("B", final=True)
    op.on("A", Command("pause"), go="B")
    assert "command 'pause' is built into the engine" in refusal(op)


def test_every_problem_is_reported_at_once():
    op = machine()
    op.state("A", settled=True)
    op.state("Orphan", settled=True)
    op.state("B", final=True)
    op.on("A", Ping, go="B")
    op.on("Orphan", Command("go"), go="B")
    with pytest.raises(DefinitionError) as refused:
        op.check()
    assert refused.value.operator == "m"
    assert len(refused.value.problems) == 1  # the unreachable state; its command counts there


def test_a_state_that_would_wait_for_nothing_is_refused():
    op = machine()
    op.state("A", settled=True)
    op.state("Stuck")
    op.state("B", final=True)
    op.on("A", Ping, go="Stuck")
    op.on("Stuck", Ping, go="B")
    message = refusal(op)
    assert "state 'Stuck' waits for nothing: it has no timer and no worker" in message
    assert "declare settled=True" in message


def test_a_state_that_names_what_else_it_waits_for_passes():
    op = machine()
    op.state("A", settled=True)
    op.state("Queued", waits_for="a permit from another workflow")
    op.state("B", final=True)
    op.on("A", Ping, go="Queued")
    op.on("Queued", Ping, go="B")
    assert op.check() is op
