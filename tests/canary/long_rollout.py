"""A canary that waits days at its promotion gate, on the time-skipping server.

The canary machine runs unchanged with *scripted* workers in place of the real ones (no
cluster, no Prometheus: every analysis passes, and the confirm-promotion gate stays shut for
as long as asked), so a rollout of days passes in seconds and its runs' histories can be
counted. Used by ``test_canary_long_rollout.py`` (hours) and ``bench/long_rollout.py`` (days).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import RawValue

from models.canary import (
    AnalysisResult,
    Finalised,
    HookResult,
    HooksRan,
    HookType,
    Initialized,
    MetricResult,
    MetricStatus,
    Promoted,
    Started,
    WeightApplied,
)
from models.operator import EngineSettings, OperatorInput, OperatorStatus, Target
from models.rollout_slots import QueueJoined
from tests.temporal_env import start_time_skipping
from worker_main import make_worker
from workflows.canary import CanaryWorkflow

#: Temporal warns about a run's history at 10,240 events; the engine stays well below.
HISTORY_GOAL = 4096
GATE = "promotion-gate"


def long_rollout_spec(interval: str) -> dict[str, Any]:
    """A Flagger-style canary with one metric and a confirm-promotion gate."""
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": interval,
            "threshold": 5,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            "webhooks": [
                {"name": GATE, "type": "confirm-promotion", "url": "http://gate.example/"}
            ],
        },
    }


@dataclass
class ScriptedCanary:
    """The canary's workers, scripted: healthy, and a gate that opens ``gate_for`` after
    the first call.

    Time is the server's (``activity.info().current_attempt_scheduled_time``): on the
    time-skipping server it runs days ahead of the wall clock.
    """

    gate_for: timedelta = timedelta(days=7)
    opens_at: datetime | None = None
    calls: dict[str, int] = field(default_factory=dict)

    def activities(self) -> list[Callable[..., Any]]:
        """One dynamic activity that answers every canary worker's name."""
        script = self

        @activity.defn(dynamic=True)
        async def scripted(args: Sequence[RawValue]) -> Any:
            step = activity.payload_converter().from_payload(args[0].payload, dict) if args else {}
            return script.answer(activity.info().activity_type, step)

        return [scripted]

    def answer(self, name: str, step: dict[str, Any]) -> Any:
        """What the real worker would return for a healthy rollout."""
        self.calls[name] = self.calls.get(name, 0) + 1
        now = activity.info().current_attempt_scheduled_time
        if self.opens_at is None:
            self.opens_at = now + self.gate_for
        weight = int((step.get("data") or {}).get("canary_weight") or 0)
        if name == "canary.initialize":
            return Initialized(revision="v2", stable_revision="v1", needs_rollout=True)
        if name == "canary.request_slot":
            return QueueJoined()
        if name == "canary.start":
            return Started(ready=True, hooks=HooksRan(type=HookType.PRE_ROLLOUT, ok=True))
        if name == "canary.set_weight":
            return WeightApplied(primary=100 - weight, canary=weight)
        if name == "canary.analyse":
            metric = MetricResult(
                name="request-success-rate", status=MetricStatus.PASS, value=100.0, min=99
            )
            return AnalysisResult(at=now, metrics=[metric])
        if name == "canary.confirm_promotion_hooks":
            ok = now >= self.opens_at
            result = HookResult(name=GATE, type=HookType.CONFIRM_PROMOTION, ok=ok)
            return HooksRan(type=HookType.CONFIRM_PROMOTION, ok=ok, results=[result])
        if name == "canary.promote":
            return Promoted(revision="v2", ready=True)
        if name == "canary.finalise":
            return Finalised()
        return None  # notify, hooks without a result, Kubernetes Events, alerts


@dataclass
class RunSizes:
    """What the rollout took: its runs' history lengths, first run first, and its end."""

    lengths: list[int]
    state: str
    analyses: int
    seconds: float


async def scripted_rollout(
    script: ScriptedCanary, spec: dict[str, Any], engine: EngineSettings | None = None
) -> tuple[OperatorStatus, list[WorkflowHistory]]:
    """Run one canary to its end with scripted workers, on a time-skipping server of its
    own: its result, and every run's history (first run first, following continue-as-new)."""
    env = await start_time_skipping()
    task_queue = f"long-{uuid.uuid4().hex[:6]}"
    target = Target(namespace="bench", name=f"long-{uuid.uuid4().hex[:6]}")
    try:
        async with make_worker(env.client, task_queue, [CanaryWorkflow], script.activities()):
            handle: WorkflowHandle[Any, OperatorStatus] = await env.client.start_workflow(
                "canary",
                OperatorInput(target=target, spec=spec, engine=engine or EngineSettings()),
                id=target.workflow_id("canary"),
                task_queue=task_queue,
                result_type=OperatorStatus,
            )
            result = await handle.result()
            histories = await run_histories(
                env.client, handle.id, handle.first_execution_run_id or ""
            )
    finally:
        await env.shutdown()
    return result, histories


async def long_rollout(days: float, interval: str = "1m", limit: int | None = None) -> RunSizes:
    """Run one canary whose promotion gate opens after ``days``; measure its runs."""
    script = ScriptedCanary(gate_for=timedelta(days=days))
    engine = EngineSettings() if limit is None else EngineSettings(history_event_limit=limit)
    began = time.monotonic()
    result, histories = await scripted_rollout(script, long_rollout_spec(interval), engine)
    return RunSizes(
        lengths=[len(history.events) for history in histories],
        state=result.state,
        analyses=script.calls.get("canary.analyse", 0),
        seconds=time.monotonic() - began,
    )


async def run_histories(
    client: Client, workflow_id: str, first_run_id: str
) -> list[WorkflowHistory]:
    """Every run's history, first run first, following continue-as-new.

    The time-skipping server lists no workflows, so the chain is walked run by run.
    """
    histories = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        handed = last.HasField("workflow_execution_continued_as_new_event_attributes")
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id if handed else None
    return histories
