"""Changes to the canary machine must not break rollouts that are already running.

The history was recorded from the end-to-end test of a healthy rollout on the local
cluster (weights 10 to 50, promotion, finalisation); see ``histories.py``.
"""

from __future__ import annotations

from tests.canary.histories import HISTORIES
from tests.replay import replay_failure
from workflows.canary import CanaryWorkflow


async def test_the_recorded_promotion_replays_without_nondeterminism():
    failure = await replay_failure(
        CanaryWorkflow, "canary/replay/podinfo", (HISTORIES / "canary_promoted.json").read_text()
    )
    assert failure is None, failure
