"""The canary's Kubernetes Events: on the ``Canary`` a rollout came from, else on its Deployment.

Why on the Canary: that is what users ``kubectl describe`` (Flagger writes its Events
there too). The workflow knows only the Deployment (one workflow per Deployment), so the
Canary is looked up by its ``spec.targetRef``; without one (a rollout started from a file
with ``autopilot canary start``, or no Canary CRD), the Deployment gets them.

Activities that change something record it themselves (:func:`record`); facts only the
workflow sees (a verdict, a gate) come through :func:`record_event`. Both go through the
shared recorder (:mod:`activities.kube.events`): deduplicated, rate-limited, best effort.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio import activity

from activities import kube
from activities.canary.objects import CANARY
from activities.kube.events import REQUEST_TIMEOUT_S, TIMEOUT_S
from models.canary import CanaryStep
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from models.kube_events import EventNote, RecordEvent
from models.operator import Target

logger = logging.getLogger(__name__)


def _targets(canary: dict[str, Any], name: str) -> bool:
    spec = canary.get("spec") or {}
    ref = spec.get("targetRef") or {}
    meta = canary.get("metadata") or {}
    return isinstance(ref, dict) and ref.get("name") == name and not meta.get("deletionTimestamp")


async def about(target: Target) -> kube.ObjectRef:
    """The oldest live Canary whose ``targetRef`` is the Deployment, else the Deployment."""
    namespace, name = target.namespace, target.name
    try:
        listed = await CANARY.call(
            kube.custom().list_namespaced_custom_object,
            CANARY_GROUP,
            CANARY_VERSION,
            namespace,
            CANARY_PLURAL,
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        items = [item for item in (listed.get("items") or []) if _targets(item, name)]
    except Exception:  # no CRD, no permission, API away: the Deployment gets the Event
        items = []
    if items:
        oldest = min(items, key=lambda item: item["metadata"].get("creationTimestamp") or "")
        return kube.ObjectRef.of(oldest)
    uid: str | None = None
    try:
        deployment = await CANARY.read_or_none(
            kube.apps().read_namespaced_deployment, name, namespace
        )
        uid = (deployment or {}).get("metadata", {}).get("uid")
    except Exception:
        uid = None
    return kube.ObjectRef("apps/v1", "Deployment", namespace, name, uid)


async def _record(target: Target, note: EventNote, occurrence: str, workflow_id: str) -> str | None:
    """Find the object and write; bounded in time, and never raises."""
    try:
        async with asyncio.timeout(2 * TIMEOUT_S):
            found = await about(target)
            return await kube.recorder(CANARY).record(found, note, occurrence, workflow_id)
    except Exception as error:  # best effort: an Event never fails a rollout
        logger.warning("event %s for %s not written: %s", note.reason, workflow_id, error)
        return None


async def record(step: CanaryStep, note: EventNote) -> str | None:
    """What a canary activity did, as an Event (one per step key and reason, retries or not)."""
    return await _record(step.target, note, f"{step.step_key}:{note.reason}", step.workflow_id)


@activity.defn(name="canary.record_event")
async def record_event(request: RecordEvent) -> str | None:
    """What the workflow saw (a verdict, a gate) as an Event; never fails.

    Returns:
        ``namespace/name`` of the Event, or None when it was not written.
    """
    return await _record(request.target, request.note, request.occurrence, request.workflow_id)
