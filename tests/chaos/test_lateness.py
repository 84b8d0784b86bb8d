"""How the chaos harness charges a late action to a worker kill, alone or with other kills."""

from __future__ import annotations

from tests.chaos.lateness import Action, next_after_kills


def action(started: float, due: float) -> Action:
    return Action(started=started, due=due, scheduled=due, attempt=1)


def test_the_first_action_after_a_worker_kill_counts_how_late_it_was_against_its_due_time():
    run = [action(started=5.0, due=4.0), action(started=12.0, due=9.0)]
    found = next_after_kills([run], kills=[8.0], every_kill=[8.0])
    assert found.alone == [3.0] and found.compound == []


def test_an_action_delayed_by_another_kill_too_is_counted_apart():
    run = [action(started=20.0, due=9.0)]
    # The worker was killed at 8 s, and the Temporal server at 11 s, before the action.
    found = next_after_kills([run], kills=[8.0], every_kill=[8.0, 11.0])
    assert found.alone == [] and found.compound == [11.0]


def test_a_kill_after_the_action_started_does_not_make_it_compound():
    run = [action(started=10.0, due=9.0)]
    found = next_after_kills([run], kills=[8.0], every_kill=[8.0, 10.5])
    assert found.alone == [1.0]
