"""How the chaos harness charges a late action to a worker kill, alone or with other kills."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from tests.chaos.lateness import LOCAL_ACTIVITY_MARKER, Action, actions, next_after_kills


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


def history_event(at: float, kind: str, id: int, **links: int | str) -> HistoryEvent:
    """An event of a kind (``workflow_task_started``, ``marker_recorded``...) at ``at`` s."""
    found = HistoryEvent(event_id=id)
    found.event_time.FromMicroseconds(int(at * 1e6))
    found.event_type = getattr(EventType, f"EVENT_TYPE_{kind.upper()}")
    attributes = getattr(found, f"{kind}_event_attributes")
    attributes.SetInParent()
    for name, value in links.items():
        setattr(attributes, name, value)
    return found


def test_a_local_activity_is_an_action_started_with_the_workflow_task_it_ran_in():
    events = [
        history_event(4.0, "workflow_task_scheduled", 7),
        history_event(4.1, "workflow_task_started", 8, scheduled_event_id=7),
        history_event(14.0, "workflow_task_timed_out", 9, scheduled_event_id=7),  # killed
        history_event(14.0, "workflow_task_scheduled", 10),
        history_event(15.5, "workflow_task_started", 11, scheduled_event_id=10),
        history_event(15.9, "workflow_task_completed", 12, started_event_id=11),
        history_event(
            15.9,
            "marker_recorded",
            13,
            marker_name=LOCAL_ACTIVITY_MARKER,
            workflow_task_completed_event_id=12,
        ),
    ]
    assert actions(events, kills=[10.0]) == [
        Action(started=15.5, due=4.0, scheduled=15.5, attempt=1)
    ]
