"""The figures of the end-to-end reaction benchmark (``bench/reaction.py``)."""

from __future__ import annotations

import pytest

from bench.reaction import APP, Round, failing_requests


def test_failing_requests_count_only_the_canary_s_5xx_answers() -> None:
    text = (
        f'istio_requests_total{{destination_workload="{APP}",response_code="500"}} 3\n'
        f'istio_requests_total{{destination_workload="{APP}",response_code="503"}} 2\n'
        f'istio_requests_total{{destination_workload="{APP}",response_code="200"}} 90\n'
        f'istio_requests_total{{destination_workload="{APP}-primary",response_code="500"}} 7\n'
    )
    assert failing_requests(text) == 5


def test_the_reaction_runs_from_the_first_failing_request_to_weight_0_leg_by_leg() -> None:
    legs = Round(
        fault=100.0,
        failing=100.5,
        scraped=101.0,
        queried=102.0,
        signalled=102.25,
        decided=102.5,
        zero=102.75,
    ).legs()
    assert legs["fault -> first failing request"] == pytest.approx(0.5)
    assert legs["-> queried"] == pytest.approx(1.0)
    assert legs["-> decided"] == pytest.approx(0.25)
    assert legs["reaction (first failing request -> weight 0)"] == pytest.approx(2.25)
