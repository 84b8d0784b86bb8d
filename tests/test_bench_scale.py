"""The figures of the scale benchmark (``bench/scale.py``), computed from what it records."""

from __future__ import annotations

from pytest import approx
from temporalio.api.history.v1 import HistoryEvent

from bench.scale import (
    History,
    Kill,
    counter_sum,
    lateness,
    quantile,
    step_legs,
    timer_due,
    workflow_tasks,
    wrong_outcomes,
)


def test_a_step_is_late_by_the_time_from_its_timer_to_the_next_weight_seen() -> None:
    assert lateness([10.0, 20.0], [10.5, 21.25]) == [0.5, 1.25]


def test_a_timer_after_which_no_weight_changed_before_the_next_counts_for_nothing() -> None:
    assert lateness([10.0, 20.0, 30.0], [20.5, 40.0]) == [0.5, 10.0]


def test_a_counter_is_summed_over_the_samples_whose_labels_match() -> None:
    text = (
        "# HELP x_total a counter\n"
        'x_total{handler="/api/v1/query",code="200"} 3\n'
        'x_total{handler="/api/v1/query_range",code="200"} 2\n'
        'x_total{handler="/metrics",code="200"} 7\n'
        "x_totals 100\n"
    )
    assert counter_sum(text, "x_total", r'handler="/api/v1/query(_range)?"') == 5
    assert counter_sum(text, "x_total") == 12


def test_healthy_rollouts_must_succeed_and_faulty_ones_must_fail() -> None:
    outcomes = {"a": "Succeeded", "b": "Failed", "c": "Succeeded", "d": "Failed"}
    assert wrong_outcomes(outcomes, faulty={"b", "c"}) == ["c", "d"]


def test_the_p99_of_a_few_values_is_the_largest_and_of_none_is_not_a_number() -> None:
    assert quantile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert quantile([], 0.5) != quantile([], 0.5)


def test_a_timer_falls_due_its_whole_timeout_after_it_started_whatever_the_local_zone() -> None:
    event = HistoryEvent()
    event.event_time.FromMicroseconds(1_700_000_000_250_000)
    event.timer_started_event_attributes.start_to_fire_timeout.FromMicroseconds(
        86_400_000_000 + 1_500_000
    )
    assert timer_due(event) == 1_700_000_000.25 + 86_401.5


def test_after_a_kill_only_each_rollouts_first_step_due_after_it_counts() -> None:
    kill = Kill(at=100.0, ready=101.5)
    assert kill.resumed([90.0, 103.0, 113.0], [90.2, 106.5, 113.1]) == [3.5]
    assert kill.resumed([90.0], [90.2]) == []  # it had ended before the kill


def event(at_us: int, kind: str, **links: int) -> HistoryEvent:
    """A workflow-task event at a time, linked to the events it names."""
    return history_event(at_us, f"workflow_task_{kind}", **links)


def history_event(at_us: int, kind: str, **links: int) -> HistoryEvent:
    """An event of a kind (``timer_fired``, ``activity_task_started``...) at a time."""
    found = HistoryEvent(event_id=links.pop("id", 0))
    found.event_time.FromMicroseconds(at_us)
    attributes = getattr(found, f"{kind}_event_attributes")
    attributes.SetInParent()
    for name, value in links.items():
        setattr(attributes, name, value)
    return found


def test_a_step_whose_workers_are_local_is_a_timer_and_one_workflow_task() -> None:
    legs = step_legs(
        [
            history_event(0, "timer_started", id=5),
            history_event(200_000, "timer_fired", id=6, started_event_id=5),
            event(300_000, "scheduled", id=7),
            event(1_300_000, "started", id=8, scheduled_event_id=7),
            event(1_800_000, "completed", id=9, started_event_id=8),
        ]
    )
    assert legs["timer fired"] == approx([0.2])
    assert legs["task queued"] == approx([1.1])
    assert legs["task ran"] == approx([0.5])
    assert legs["activity queued"] == legs["activity ran"] == []


def test_a_step_that_schedules_an_activity_counts_its_wait_and_run_too() -> None:
    legs = step_legs(
        [
            history_event(0, "timer_started", id=5),
            history_event(0, "timer_fired", id=6, started_event_id=5),
            event(100_000, "scheduled", id=7),
            event(400_000, "started", id=8, scheduled_event_id=7),
            event(500_000, "timed_out", id=9, scheduled_event_id=7),  # the sticky queue
            event(2_000_000, "scheduled", id=10),
            event(2_500_000, "started", id=11, scheduled_event_id=10),
            event(2_600_000, "completed", id=12, started_event_id=11),
            history_event(
                2_600_000, "activity_task_scheduled", id=13, workflow_task_completed_event_id=12
            ),
            history_event(3_600_000, "activity_task_started", id=14, scheduled_event_id=13),
            history_event(5_600_000, "activity_task_completed", id=15, scheduled_event_id=13),
        ]
    )
    assert legs["task queued"] == approx([2.5])  # from the firing, through the timed-out task
    assert legs["task ran"] == approx([0.1])
    assert legs["activity queued"] == approx([1.0])
    assert legs["activity ran"] == approx([2.0])


def test_a_workflow_task_waits_from_scheduled_to_started_and_runs_until_completed() -> None:
    found = History()
    workflow_tasks(
        [
            event(1_000_000, "scheduled", id=2),
            event(3_500_000, "started", id=3, scheduled_event_id=2),
            event(3_600_000, "completed", id=4, started_event_id=3),
            event(9_000_000, "scheduled", id=9),
            event(10_000_000, "timed_out", id=10, scheduled_event_id=9),
        ],
        found,
    )
    assert found.task_waits == [2.5]
    assert [round(run, 3) for run in found.task_runs] == [0.1]
    assert found.task_timeouts == 1
