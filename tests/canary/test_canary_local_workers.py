"""A canary step of queries and a weight change is one workflow task.

Time-skipping server, scripted workers (``tests/canary/long_rollout.py``). The analysis (when
it calls no webhook) and the weight change run as local activities inside the workflow task
the step's timer woke: before, each was an activity task and each of their results a
workflow task of its own, four per step, and at a hundred rollouts at once those tasks
queued behind one another (``docs/performance.md``). An analysis that calls a webhook, which
may take minutes, stays an activity task, so commands never wait for it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.history.v1 import HistoryEvent

from tests.canary.histories import decoded
from tests.canary.long_rollout import ScriptedCanary, long_rollout_spec, scripted_rollout
from workflows.engine.runtime import LOCAL_WORKERS_PATCH

pytestmark = pytest.mark.temporal

LOAD_TEST = {"name": "load", "type": "rollout", "url": "http://load.example/"}


async def promote(spec: dict[str, Any]) -> tuple[str, ScriptedCanary, list[HistoryEvent], str]:
    """Run one healthy canary to its end: its state, the workers' calls, its events and
    its history's payloads as text."""
    script = ScriptedCanary(gate_for=timedelta(0))
    result, histories = await scripted_rollout(script, spec)
    text = decoded(json.loads(histories[0].to_json()))
    return result.state, script, list(histories[0].events), text


def scheduled_activities(events: list[HistoryEvent]) -> set[str]:
    """The names of the activity tasks a run scheduled."""
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }


def tasks_per_step(events: list[HistoryEvent]) -> list[int]:
    """For each timer that fired, the workflow tasks completed until the next timer began."""
    counts: list[int] = []
    tasks: int | None = None
    for event in events:
        if event.HasField("timer_fired_event_attributes"):
            tasks = 0
        elif event.HasField("workflow_task_completed_event_attributes") and tasks is not None:
            tasks += 1
        elif event.HasField("timer_started_event_attributes") and tasks is not None:
            counts.append(tasks)
            tasks = None
    return counts


async def test_each_step_of_a_canary_without_analysis_webhooks_is_one_workflow_task():
    state, script, events, text = await promote(long_rollout_spec("1m"))

    assert state == "Succeeded"
    assert script.calls["canary.analyse"] >= 5 and script.calls["canary.set_weight"] >= 5
    assert not {"canary.analyse", "canary.set_weight"} & scheduled_activities(events)
    steps = tasks_per_step(events)
    assert len(steps) >= 4 and set(steps) == {1}, steps
    assert LOCAL_WORKERS_PATCH in text  # runs recorded before it lack its marker


async def test_an_analysis_that_calls_a_rollout_webhook_stays_an_activity_task():
    spec = long_rollout_spec("1m")
    spec["analysis"]["webhooks"].append(LOAD_TEST)

    state, _, events, _ = await promote(spec)

    assert state == "Succeeded"
    scheduled = scheduled_activities(events)
    assert "canary.analyse" in scheduled
    assert "canary.set_weight" not in scheduled
