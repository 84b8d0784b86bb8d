"""A rollout that sent chat alerts replays: the alerts' activities are behind their patch.

Recorded from ``test_alerts_cluster.py`` (a faulty canary with a Slack-type and a
Teams-type alert; see ``histories.py``): every alert started ``canary.send_alert``.
"""

from __future__ import annotations

import json

from tests.canary.histories import HISTORIES, decoded
from tests.replay import replay_failure
from workflows.canary import CanaryWorkflow
from workflows.engine.runtime import ALERTS_PATCH


async def test_a_rollback_that_sent_alerts_replays():
    history = (HISTORIES / "canary_rolled_back_with_alerts.json").read_text()
    assert '"name": "canary.send_alert"' in history
    assert ALERTS_PATCH in decoded(json.loads(history))
    failure = await replay_failure(CanaryWorkflow, "canary/replay/alerts", history)
    assert failure is None, failure
