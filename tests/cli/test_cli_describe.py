"""`autopilot describe`: an operator's states and transitions, as a table and a diagram."""

from __future__ import annotations

import pytest

from tests.engine.ticket_operator import TicketWorkflow
from workflows import registry


@pytest.fixture(autouse=True)
def ticket_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's test operator, registered for this test only (the worker must not see it)."""
    monkeypatch.setitem(registry._WORKFLOWS, "ticket", TicketWorkflow)


async def test_describe_lists_states_with_their_kind_workers_and_timer(autopilot):
    result = await autopilot("describe", "ticket")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    open_row = next(line for line in lines if line.strip().startswith("Open "))
    assert (
        "initial" in open_row and "ticket.announce" in open_row and "collecting votes" in open_row
    )
    review = next(line for line in lines if line.strip().startswith("InReview "))
    assert "review_time() → Expired" in review
    broken = next(line for line in lines if line.strip().startswith("Broken "))
    assert "settled" in broken
    assert any(line.strip().startswith("Done ") and "final" in line for line in lines)


async def test_describe_lists_transitions_with_commands_written_as_slash_commands(autopilot):
    result = await autopilot("describe", "ticket")
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["InReview", "/approve", "Applying"] in rows
    assert ["Open", "Vote", "enough_votes", "InReview", "count_vote"] in rows
    assert ["Open", "Vote", "(stays)", "count_vote"] in rows
    assert ["InReview", "after", "review_time()", "Expired"] in rows


async def test_describe_mermaid_draws_a_state_diagram(autopilot):
    result = await autopilot("describe", "ticket", "--mermaid")
    assert result.exit_code == 0
    diagram = result.stdout.splitlines()
    assert diagram[0] == "stateDiagram-v2"
    assert "    [*] --> Open" in diagram
    assert "    Open --> InReview: Vote [enough_votes]" in diagram
    assert "    InReview --> Applying: /approve" in diagram
    assert "    InReview --> Expired: after review_time()" in diagram
    assert "    Done --> [*]" in diagram
    assert "    class Open,Broken settled" in diagram


async def test_describe_draws_the_canary_operator(autopilot):
    table = await autopilot("describe", "canary")
    assert table.exit_code == 0, table.output
    assert "AwaitingPromotion" in table.stdout and "/approve" in table.stdout
    diagram = (await autopilot("describe", "canary", "--mermaid")).stdout
    assert "    Finalising --> Succeeded: Finalised" in diagram
    assert 'state "any non-final state" as any_state' in diagram


async def test_describe_an_unknown_operator_exits_4_listing_the_known_ones(autopilot):
    result = await autopilot("describe", "nothing")
    assert result.exit_code == 4
    assert "no operator 'nothing'" in result.stderr and "canary" in result.stderr


def test_a_state_named_like_a_mermaid_keyword_is_drawn_under_an_alias():
    from pydantic import BaseModel

    from workflows.engine import ANY, Command, Operator
    from workflows.engine.diagram import mermaid

    class Spec(BaseModel):
        pass

    machine = Operator("odd", spec=Spec, data=Spec, initial="state")
    machine.state("state", settled=True)
    machine.state("end", final=True, failed=True)
    machine.on("state", Command("finish"), go="end")
    machine.on(ANY, Command("stop"), go="end")
    machine.check()

    diagram = mermaid(machine).splitlines()
    assert '    state "state" as s0' in diagram
    assert '    state "end" as s1' in diagram
    assert "    s0 --> s1: /finish" in diagram
    assert "    any_state --> s1: /stop" in diagram
    assert "    class s1 failed" in diagram
