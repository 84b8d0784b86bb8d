"""Flagger-style webhooks: POST a JSON payload, 200-202 means yes.

Payload (the same as Flagger's, so existing receivers such as Flagger's load tester keep
working)::

    {"name": "podinfo", "namespace": "test", "phase": "Progressing",
     "checksum": "<revision>", "metadata": {...the hook's metadata...}}

``event`` hooks get ``metadata.eventMessage``, ``eventType`` and ``timestamp`` (unix ms).
Every POST carries ``Idempotency-Key``: the same for every delivery of one hook at one step
(an activity retried after a worker crash, a hook's own retries), different at the next step,
so a receiver with side effects can apply each once however often it is delivered.
A hook is retried ``retries`` times on a connection error, a timeout or a 5xx answer;
anything else (a 4xx, a 3xx) is a "no" at once. A hook never raises: its outcome is data
for the state machine.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from temporalio import activity

from activities.canary import slots
from models.canary import (
    CanaryStep,
    CanaryWebhook,
    HookResult,
    HooksRan,
    HookType,
)

#: Longest part of a response body kept in a result.
MAX_BODY = 300
#: Backoff between attempts of one hook: doubles from this, capped at 5 s.
FIRST_BACKOFF = 0.2


def payload(step: CanaryStep, hook: CanaryWebhook, phase: str | None = None) -> dict[str, Any]:
    """Flagger's webhook payload for this canary and hook."""
    return {
        "name": step.target.name,
        "namespace": step.target.namespace,
        "phase": phase or step.phase or step.state,
        "checksum": step.data.revision or "",
        "metadata": dict(hook.metadata),
    }


def event_payload(step: CanaryStep, hook: CanaryWebhook, message: str, kind: str) -> dict[str, Any]:
    """Flagger's event payload: the hook's metadata never overrides the event fields."""
    body = payload(step, hook)
    body["metadata"] = {
        **hook.metadata,
        "eventMessage": message,
        "eventType": kind,
        "timestamp": str(int(time.time() * 1000)),
    }
    return body


def idempotency_key(hook: CanaryWebhook) -> str:
    """One key per hook per scheduled activity: its retries (redeliveries) share it."""
    info = activity.info()
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{hook.name}"


async def call(
    session: aiohttp.ClientSession, hook: CanaryWebhook, body: dict[str, Any]
) -> HookResult:
    """POST ``body`` to one hook, retrying on errors and 5xx; never raises."""
    attempts = hook.retries + 1
    headers = {"Idempotency-Key": idempotency_key(hook)} if activity.in_activity() else {}
    message = ""
    status: int | None = None
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(min(5.0, FIRST_BACKOFF * 2 ** (attempt - 1)))
        try:
            async with session.post(
                hook.url,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=hook.timeout.total_seconds()),
                ssl=not hook.disable_tls,
            ) as response:
                status = response.status
                text = (await response.text(errors="replace"))[:MAX_BODY]
                if 200 <= status <= 202:
                    return HookResult(name=hook.name, type=hook.type, ok=True, status=status)
                message = f"HTTP {status}" + (f": {text.strip()}" if text.strip() else "")
                if status < 500:
                    break
        except TimeoutError:
            status, message = None, f"no answer within {hook.timeout.total_seconds():g}s"
        except aiohttp.ClientError as error:
            status, message = None, f"{type(error).__name__}: {error}"
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    return HookResult(name=hook.name, type=hook.type, ok=False, status=status, message=message)


async def run_hooks(step: CanaryStep, kind: HookType) -> list[HookResult]:
    """Call every hook of one type, in declaration order."""
    hooks = step.spec.analysis.hooks(kind)
    if not hooks:
        return []
    async with aiohttp.ClientSession() as session:
        return [await call(session, hook, payload(step, hook)) for hook in hooks]


async def rollback_requested(step: CanaryStep) -> list[HookResult]:
    """Flagger's ``rollback`` hooks: the ones that answered yes (they ask to roll back)."""
    return [result for result in await run_hooks(step, HookType.ROLLBACK) if result.ok]


async def _gate(step: CanaryStep, kind: HookType) -> HooksRan:
    results = await run_hooks(step, kind)
    rollback = await rollback_requested(step)
    return HooksRan(
        type=kind,
        ok=all(r.ok for r in results),
        results=results + rollback,
        rollback_requested=bool(rollback),
    )


@activity.defn(name="canary.confirm_rollout_hooks")
async def confirm_rollout_hooks(step: CanaryStep) -> HooksRan:
    """``confirm-rollout`` hooks (the start gate), and ``rollback`` hooks."""
    return await _gate(step, HookType.CONFIRM_ROLLOUT)


@activity.defn(name="canary.confirm_traffic_increase_hooks")
async def confirm_traffic_increase_hooks(step: CanaryStep) -> HooksRan:
    """``confirm-traffic-increase`` hooks (the step gate), and ``rollback`` hooks."""
    return await _gate(step, HookType.CONFIRM_TRAFFIC_INCREASE)


@activity.defn(name="canary.confirm_promotion_hooks")
async def confirm_promotion_hooks(step: CanaryStep) -> HooksRan:
    """``confirm-promotion`` hooks (the promotion gate), and ``rollback`` hooks."""
    return await _gate(step, HookType.CONFIRM_PROMOTION)


@activity.defn(name="canary.post_rollout_hooks")
async def post_rollout_hooks(step: CanaryStep) -> None:
    """The rollout ended (Succeeded, Failed, Aborted): give back its permits of the
    concurrency cap, then run ``post-rollout`` hooks; hook failures are only logged."""
    await slots.release_permits(step)
    for result in await run_hooks(step, HookType.POST_ROLLOUT):
        if not result.ok:
            activity.logger.warning("post-rollout hook %s: %s", result.name, result.message)


def event_message(step: CanaryStep) -> tuple[str, str]:
    """What happened, in Flagger's words where Flagger has some, and its event type."""
    data, name = step.data, f"{step.target.name}.{step.target.namespace}"
    messages = {
        "Waiting": (f"Halt {name} advancement waiting for approval", "Normal"),
        "Progressing": (f"Advance {name} canary weight {data.canary_weight}", "Normal"),
        "AwaitingStep": (f"Halt {name} advancement waiting for approval", "Normal"),
        "AwaitingPromotion": (f"Halt {name} promotion waiting for approval", "Normal"),
        "Promoting": (f"Copying {step.target.name} template spec to the primary", "Normal"),
        "Succeeded": (f"Promotion completed! {name} revision {data.revision}", "Normal"),
        "Failed": (f"Canary failed! {name}: {data.failure or 'rolled back'}", "Warning"),
        "Aborted": (f"Canary aborted! {name}: {data.failure or 'aborted'}", "Warning"),
    }
    return messages.get(step.state, (f"{name} entered {step.state}", "Normal"))


@activity.defn(name="canary.notify")
async def notify(step: CanaryStep) -> None:
    """Send the current event to every ``event`` hook; failures are only logged."""
    hooks = step.spec.analysis.hooks(HookType.EVENT)
    if not hooks:
        return
    message, kind = event_message(step)
    async with aiohttp.ClientSession() as session:
        for hook in hooks:
            result = await call(session, hook, event_payload(step, hook, message, kind))
            if not result.ok:
                activity.logger.warning("event hook %s: %s", hook.name, result.message)
