"""Rollouts of Flagger's other strategies, recorded on the local cluster, must replay.

``canary_ab_test_promoted.json``: an A/B test promoted after 3 iterations (the matching
requests at weight 100). ``canary_blue_green_mirror_promoted.json``: a blue/green with a
mirror, promoted with all traffic on the canary while the primary rolled out, under the
patch ``canary-blue-green-switches-traffic`` (its marker is in the history). Both were
recorded by ``test_strategies_e2e.py`` (see ``histories.py``).
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.canary.histories import HISTORIES
from tests.replay import replay_failure
from workflows.canary import CanaryWorkflow
from workflows.canary.guards import BLUE_GREEN_SWITCH_PATCH


@pytest.mark.parametrize("name", ["canary_ab_test_promoted", "canary_blue_green_mirror_promoted"])
async def test_a_recorded_rollout_of_another_strategy_replays(name):
    history = (HISTORIES / f"{name}.json").read_text()
    if "blue_green" in name:
        assert BLUE_GREEN_SWITCH_PATCH in patches(history)
    failure = await replay_failure(CanaryWorkflow, f"canary/replay/{name}", history)
    assert failure is None, failure


def patches(history: str) -> list[str]:
    """The Temporal patches a history's markers recorded."""
    found = []
    for event in json.loads(history)["events"]:
        details = (event.get("markerRecordedEventAttributes") or {}).get("details") or {}
        for payload in (details.get("patch-data") or {}).get("payloads") or []:
            found.append(json.loads(base64.b64decode(payload["data"]))["id"])
    return found
