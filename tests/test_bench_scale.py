"""The figures of the scale benchmark (``bench/scale.py``), computed from what it records."""

from __future__ import annotations

from temporalio.api.history.v1 import HistoryEvent

from bench.scale import counter_sum, lateness, quantile, timer_due, wrong_outcomes


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
