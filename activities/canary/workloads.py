"""The workloads of a canary: the user's Deployment and the ``<name>-primary`` we generate.

Workload model (Flagger's, so users keep their selectors, labels and dashboards): the
user's Deployment ``<name>`` is the *target* and runs the canary; Autopilot creates
``<name>-primary`` from it, with the selector label rewritten to ``<value>-primary``, to run
the stable version. Between rollouts the target is scaled to zero and the primary serves
everything; a rollout scales the target up, shifts traffic, and on promotion copies the
target's pod template to the primary.

A *revision* is a hash of the target's pod template. The primary records the revision it
runs in the ``autopilot.dev/revision`` annotation, and a revision that failed or was aborted
in ``autopilot.dev/rejected-revision``, so a replayed watcher event does not roll a rejected
revision out again (``autopilot retry`` does).
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass
from typing import Any

from temporalio import activity

from activities import kube
from activities.canary.objects import (
    CANARY,
    REJECTED_REASON,
    REJECTED_REVISION,
    REVISION,
    owned_by,
)
from activities.errors import non_retryable
from models.revisions import pod_template_revision

#: Label keys that carry the app name, in the order Flagger looks for them.
SELECTOR_KEYS = ("app", "app.kubernetes.io/name", "name")
#: The longest a single activity attempt waits for a rollout to become ready.
MAX_WAIT_SECONDS = 15.0


def primary_name(target: str) -> str:
    """``podinfo`` → ``podinfo-primary``."""
    return f"{target}-primary"


@dataclass(frozen=True)
class Selector:
    """The label that tells the primary's pods from the canary's."""

    key: str
    value: str

    @property
    def primary_value(self) -> str:
        """The value on primary pods."""
        return f"{self.value}-primary"


def selector_of(deployment: dict[str, Any]) -> Selector:
    """Find the app label in the target's selector (``app``, ``app.kubernetes.io/name``...).

    Raises:
        ApplicationError: the selector has none of them (non-retryable, names the keys).
    """
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for key in SELECTOR_KEYS:
        if key in labels:
            return Selector(key, labels[key])
    name = deployment["metadata"]["name"]
    raise non_retryable(
        f"Deployment {name} has no {' / '.join(SELECTOR_KEYS)} label in spec.selector."
        "matchLabels; Autopilot needs one to tell primary pods from canary pods"
    )


def primary_template(target: dict[str, Any], selector: Selector) -> dict[str, Any]:
    """The target's pod template with the app label rewritten for the primary."""
    template = copy.deepcopy(target["spec"]["template"])
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels[selector.key] = selector.primary_value
    return dict(template)


def build_primary(target: dict[str, Any], revision: str, workflow_id: str) -> dict[str, Any]:
    """A new ``<name>-primary`` Deployment running the target's current template."""
    selector = selector_of(target)
    name = target["metadata"]["name"]
    match_labels = dict(target["spec"]["selector"]["matchLabels"])
    match_labels[selector.key] = selector.primary_value
    metadata = CANARY.metadata(
        primary_name(name),
        target["metadata"]["namespace"],
        workflow_id,
        labels={selector.key: selector.primary_value},
    )
    metadata["annotations"][REVISION] = revision
    if owners := owned_by(target):
        metadata["ownerReferences"] = owners
    spec: dict[str, Any] = {
        "replicas": max(1, target["spec"].get("replicas") or 0),
        "selector": {"matchLabels": match_labels},
        "template": primary_template(target, selector),
    }
    for field in ("strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        if field in target["spec"]:
            spec[field] = copy.deepcopy(target["spec"][field])
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def target_revision(target: dict[str, Any]) -> str:
    """The revision the target (canary) Deployment's template describes."""
    return pod_template_revision(target["spec"]["template"])


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    """An object's annotations (empty when it has none)."""
    return dict((obj.get("metadata") or {}).get("annotations") or {})


@dataclass(frozen=True)
class Readiness:
    """Whether a Deployment's current generation is fully rolled out."""

    ready: bool
    message: str
    ready_replicas: int = 0
    replicas: int = 0


def readiness(deployment: dict[str, Any], *, minimum: int = 0) -> Readiness:
    """Judge a Deployment exactly as ``kubectl rollout status`` does.

    Args:
        deployment: The live object.
        minimum: Replicas that must be ready at least (1 for a canary about to get traffic).
    """
    name = deployment["metadata"]["name"]
    spec_replicas = (deployment.get("spec") or {}).get("replicas")
    replicas = 1 if spec_replicas is None else int(spec_replicas)
    status = deployment.get("status") or {}
    generation = deployment["metadata"].get("generation") or 0
    observed = status.get("observedGeneration") or 0
    current = status.get("replicas") or 0
    updated = status.get("updatedReplicas") or 0
    available = status.get("availableReplicas") or 0

    def waiting(message: str) -> Readiness:
        return Readiness(False, f"{name}: {message}", available, replicas)

    if observed < generation:
        return waiting(f"generation {generation} not observed yet")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            return waiting("progress deadline exceeded")
    if replicas < minimum:
        return waiting(f"scaled to {replicas}")
    if updated < replicas:
        return waiting(f"{updated} of {replicas} new replicas updated")
    if current > updated:
        return waiting(f"{current - updated} old replicas pending termination")
    if available < updated:
        return waiting(f"{available} of {updated} updated replicas available")
    return Readiness(True, f"{name}: {available} of {replicas} replicas ready", available, replicas)


# ----------------------------------------------------------------------- API calls


async def read(namespace: str, name: str) -> dict[str, Any]:
    """Read a Deployment as a JSON mapping."""
    return kube.to_dict(await CANARY.call(kube.apps().read_namespaced_deployment, name, namespace))


async def read_or_none(namespace: str, name: str) -> dict[str, Any] | None:
    """Read a Deployment, or ``None`` if it does not exist."""
    return await CANARY.read_or_none(kube.apps().read_namespaced_deployment, name, namespace)


async def replace(deployment: dict[str, Any]) -> dict[str, Any]:
    """Write a whole Deployment back, guarded by its resourceVersion."""
    meta = deployment["metadata"]
    result = await CANARY.call(
        kube.apps().replace_namespaced_deployment,
        meta["name"],
        meta["namespace"],
        deployment,
        field_manager=CANARY.field_manager,
    )
    return kube.to_dict(result)


async def scale(namespace: str, name: str, replicas: int) -> None:
    """Set ``spec.replicas`` through the scale subresource (no other field is touched)."""
    await CANARY.call(
        kube.apps().patch_namespaced_deployment_scale,
        name,
        namespace,
        {"spec": {"replicas": replicas}},
        field_manager=CANARY.field_manager,
    )


async def ensure_primary(
    target: dict[str, Any], revision: str, workflow_id: str
) -> tuple[dict[str, Any], bool]:
    """Return the live ``<name>-primary``, creating it from the target if it is missing.

    Returns:
        The primary and whether it was created now (a bootstrap: nothing to roll out).
    """
    namespace, name = target["metadata"]["namespace"], target["metadata"]["name"]
    existing = await read_or_none(namespace, primary_name(name))
    if existing is not None:
        return existing, False
    primary = build_primary(target, revision, workflow_id)
    created = await CANARY.create_or_none(
        kube.apps().create_namespaced_deployment, namespace, primary
    )
    if created is None:  # created by an earlier attempt of this activity
        return await read(namespace, primary_name(name)), False
    return created, True


async def promote_template(
    target: dict[str, Any], revision: str, workflow_id: str
) -> dict[str, Any]:
    """Copy the target's pod template to the primary and record the revision it runs."""
    namespace, name = target["metadata"]["namespace"], target["metadata"]["name"]
    selector = selector_of(target)
    template = primary_template(target, selector)

    def change(primary: dict[str, Any]) -> bool:
        annotations = primary["metadata"].setdefault("annotations", {}) or {}
        primary["metadata"]["annotations"] = annotations
        if annotations.get(REVISION) == revision and primary["spec"]["template"] == template:
            return False
        primary["spec"]["template"] = copy.deepcopy(template)
        annotations[REVISION] = revision
        annotations[kube.WORKFLOW] = workflow_id
        for key in (REJECTED_REVISION, REJECTED_REASON):
            annotations.pop(key, None)
        return True

    stored, _ = await kube.read_modify_write(
        lambda: read(namespace, primary_name(name)), change, replace
    )
    return stored


async def mark_rejected(namespace: str, name: str, revision: str, reason: str) -> None:
    """Remember on the primary that ``revision`` failed or was aborted."""

    def change(primary: dict[str, Any]) -> bool:
        annotations = primary["metadata"].get("annotations") or {}
        primary["metadata"]["annotations"] = annotations
        if annotations.get(REJECTED_REVISION) == revision:
            return False
        annotations[REJECTED_REVISION] = revision
        annotations[REJECTED_REASON] = reason[:1000]
        return True

    try:
        await kube.read_modify_write(lambda: read(namespace, primary_name(name)), change, replace)
    except Exception as error:
        if not kube.is_not_found(error):
            raise


async def wait_ready(
    namespace: str, name: str, *, minimum: int = 0, seconds: float | None = None
) -> Readiness:
    """Poll a Deployment until it is ready or ``seconds`` pass (heartbeating meanwhile).

    The wait is bounded on purpose: longer waits are the workflow's timers, which survive
    a worker crash; an activity only saves a round trip in the common case.
    """
    deadline = time.monotonic() + (MAX_WAIT_SECONDS if seconds is None else seconds)
    while True:
        state = readiness(await read(namespace, name), minimum=minimum)
        if state.ready or time.monotonic() >= deadline:
            return state
        if activity.in_activity() and not activity.info().is_local:  # locals do not beat
            activity.heartbeat(state.message)
        await asyncio.sleep(0.25)
