"""A rollout that waits hours at its promotion gate keeps every run's history short.

Time-skipping server, scripted workers (``tests/canary/long_rollout.py``); the week-long
run with the default bound is ``python -m bench.long_rollout --days 7``.
"""

from __future__ import annotations

import pytest

from tests.canary.long_rollout import long_rollout

pytestmark = pytest.mark.temporal


async def test_a_canary_gated_for_hours_continues_as_new_and_no_run_passes_its_bound():
    limit = 1024
    sizes = await long_rollout(days=2 / 24, interval="1m", limit=limit)

    assert sizes.state == "Succeeded"  # the gate opened, and nothing was lost on the way
    assert sizes.analyses >= 120  # one analysis a minute for two hours
    assert len(sizes.lengths) >= 3, sizes.lengths
    assert max(sizes.lengths) <= limit + 64, sizes.lengths  # one turn of the loop at most
