"""Changes to the autoroute workflow must not break routes that are already managed.

The history was recorded by ``record_history.py`` on the dev server: a route request that
asks for approval (and its repeat), ``approve``, a first check without traffic then one with,
a hand edit restored, and the Service withdrawn.
"""

from __future__ import annotations

from tests.autoroute.record_history import HISTORY, WORKFLOW_ID
from tests.replay import replay_failure
from workflows.autoroute import AutorouteWorkflow


async def test_the_recorded_autoroute_history_replays_without_nondeterminism() -> None:
    failure = await replay_failure(AutorouteWorkflow, WORKFLOW_ID, HISTORY.read_text())
    assert failure is None, failure
