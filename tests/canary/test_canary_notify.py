"""The notifier runs only for a canary that has ``event`` webhooks to call.

Time-skipping server, scripted workers (``tests/canary/long_rollout.py``). Without event
webhooks, the notifier had nothing to send, yet each step ran it: an activity and a workflow
task between the new weight and the next timer, which at a hundred rollouts at once made
every step later (``docs/performance.md``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from models.operator import OperatorStatus
from tests.canary.histories import decoded
from tests.canary.long_rollout import ScriptedCanary, long_rollout_spec, scripted_rollout
from workflows.canary.workers import NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH

pytestmark = pytest.mark.temporal

EVENT_HOOK = {"name": "chat", "type": "event", "url": "http://events.example/"}


async def promote(spec: dict[str, Any]) -> tuple[OperatorStatus, ScriptedCanary, str]:
    """Run one healthy canary to its end; its result, the workers' calls and its history."""
    script = ScriptedCanary(gate_for=timedelta(0))
    result, histories = await scripted_rollout(script, spec)
    return result, script, histories[0].to_json()


async def test_a_canary_without_event_webhooks_never_runs_the_notifier():
    result, script, history = await promote(long_rollout_spec("1m"))

    assert result.state == "Succeeded"
    assert script.calls["canary.set_weight"] >= 5  # every step still sets its weight
    assert "canary.notify" not in script.calls
    assert NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH in decoded(json.loads(history))  # old runs lack it


async def test_a_canary_with_an_event_webhook_notifies_at_every_weight_and_at_the_end():
    spec = long_rollout_spec("1m")
    spec["analysis"]["webhooks"].append(EVENT_HOOK)

    result, script, _ = await promote(spec)

    assert result.state == "Succeeded"
    # Progressing at each weight, Promoting, Succeeded.
    assert script.calls["canary.notify"] == script.calls["canary.set_weight"] + 1
