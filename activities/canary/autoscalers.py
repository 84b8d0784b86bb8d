"""The primary's HorizontalPodAutoscaler, derived from the user's (``spec.autoscalerRef``).

Flagger's model, so a Deployment with an HPA keeps autoscaling through rollouts:

* the user's HPA ``<name>`` scales the user's Deployment, which runs the **canary**; it is
  left alone. Between rollouts that Deployment is at zero replicas, and Kubernetes' HPA
  controller does not scale a target at zero (its ``ScalingActive`` condition reads
  ``ScalingDisabled``), so the canary's HPA pauses by itself and wakes when a rollout
  scales the canary up. Flagger does nothing more for an HPA either;
* the **primary** gets its own HPA ``<name>-primary``: the user's ``minReplicas``,
  ``maxReplicas``, ``metrics`` and ``behavior``, ``scaleTargetRef`` rewritten to
  ``<target>-primary``, and ``primaryScalerReplicas`` (when given) as its bounds instead.
  It is created when the canary is initialised and brought up to date when a revision is
  promoted; a change to the user's HPA alone reaches it at the next promotion, as in
  Flagger.

The primary's HPA carries the canary's marks like every object it generates (refused if an
HPA of that name is someone else's) and an owner reference to ``<target>-primary``, so
deleting the primary Deployment lets the garbage collector remove its HPA too.
"""

from __future__ import annotations

import copy
from typing import Any

from activities import kube
from activities.canary import events
from activities.canary.objects import CANARY
from activities.canary.workloads import primary_name
from activities.errors import non_retryable
from models.canary import AutoscalerRef, CanaryStep
from models.kube_events import EventNote

#: The ``spec`` fields of the primary's HPA that follow the user's.
SYNCED_FIELDS = ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior")


def primary_hpa_name(ref: AutoscalerRef) -> str:
    """``podinfo`` → ``podinfo-primary`` (the name Flagger gives it)."""
    return f"{ref.name}-primary"


def primary_hpa_spec(user: dict[str, Any], ref: AutoscalerRef, target: str) -> dict[str, Any]:
    """The user's HPA spec, pointed at ``<target>-primary``, with the primary's bounds."""
    spec = copy.deepcopy(user.get("spec") or {})
    scale_target = dict(spec.get("scaleTargetRef") or {})
    scale_target.update(
        apiVersion=scale_target.get("apiVersion") or "apps/v1",
        kind=scale_target.get("kind") or "Deployment",
        name=primary_name(target),
    )
    wanted: dict[str, Any] = {"scaleTargetRef": scale_target}
    for field in SYNCED_FIELDS[1:]:
        if spec.get(field) is not None:
            wanted[field] = spec[field]
    bounds = ref.primary_scaler_replicas
    if bounds is not None and bounds.min_replicas is not None:
        wanted["minReplicas"] = bounds.min_replicas
    if bounds is not None and bounds.max_replicas is not None:
        wanted["maxReplicas"] = bounds.max_replicas
    low, high = wanted.get("minReplicas", 1), wanted.get("maxReplicas")
    if high is not None and low > high:
        raise non_retryable(
            f"spec.autoscalerRef: the primary's HPA would have minReplicas {low} above "
            f"maxReplicas {high}; fix primaryScalerReplicas or the HPA {ref.name}"
        )
    return wanted


def build_primary_hpa(
    user: dict[str, Any], ref: AutoscalerRef, primary: dict[str, Any], workflow_id: str
) -> dict[str, Any]:
    """A new ``<name>-primary`` HPA for ``primary`` (the live ``<target>-primary``)."""
    meta = primary["metadata"]
    target = meta["name"].removesuffix("-primary")
    metadata = CANARY.metadata(primary_hpa_name(ref), meta["namespace"], workflow_id)
    metadata["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"]}
    ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": primary_hpa_spec(user, ref, target),
    }


def _synced(spec: dict[str, Any]) -> dict[str, Any]:
    return {field: spec.get(field) for field in SYNCED_FIELDS}


async def reconcile(step: CanaryStep, primary: dict[str, Any], *, init: bool) -> bool:
    """Create the primary's HPA if missing; unless ``init``, bring it to the user's HPA.

    Args:
        step: the canary (its ``spec.autoscalerRef``; nothing happens without one).
        primary: the live ``<target>-primary`` Deployment (the HPA's owner).
        init: at initialisation an existing primary HPA is left as it is (Flagger's rule:
            the user's changes reach the primary when a revision is promoted).

    Returns:
        Whether the primary's HPA was written.

    Raises:
        ApplicationError: the user's HPA does not exist, or ``<name>-primary`` is an HPA
            someone else manages (both non-retryable, naming the object).
    """
    ref = step.spec.autoscaler_ref
    if ref is None:
        return False
    namespace = step.target.namespace
    api = kube.autoscaling()
    user = await CANARY.read_or_none(
        api.read_namespaced_horizontal_pod_autoscaler, ref.name, namespace
    )
    if user is None:
        raise non_retryable(
            f"HorizontalPodAutoscaler {namespace}/{ref.name} (spec.autoscalerRef) does not exist"
        )
    wanted = build_primary_hpa(user, ref, primary, step.workflow_id)
    name = wanted["metadata"]["name"]
    created: list[bool] = []

    async def read() -> dict[str, Any] | None:
        return await CANARY.read_or_none(
            api.read_namespaced_horizontal_pod_autoscaler, name, namespace
        )

    async def create(body: dict[str, Any]) -> object:
        stored = await CANARY.call(
            api.create_namespaced_horizontal_pod_autoscaler,
            namespace,
            body,
            field_manager=CANARY.field_manager,
        )
        created.append(True)
        return stored

    def change(live: dict[str, Any]) -> bool:
        CANARY.refuse_foreign(live)
        spec, meta = live.setdefault("spec", {}), live["metadata"]
        owners = wanted["metadata"]["ownerReferences"]
        same = _synced(spec) == _synced(wanted["spec"]) and meta.get("ownerReferences") == owners
        if init or same:
            return False
        for field in SYNCED_FIELDS:
            spec.pop(field, None)
        spec.update(copy.deepcopy(wanted["spec"]))
        meta["ownerReferences"] = owners  # a primary created again has another uid
        annotations = meta.get("annotations") or {}
        annotations[kube.WORKFLOW] = step.workflow_id
        meta["annotations"] = annotations
        return True

    async def write(live: dict[str, Any]) -> object:
        return await CANARY.call(
            api.replace_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
            live,
            field_manager=CANARY.field_manager,
        )

    if not await kube.ensure(wanted, read, create, change, write):
        return False
    spec = wanted["spec"]
    done = "created" if created else "updated"
    message = (
        f"HorizontalPodAutoscaler {name} {done} from {ref.name}: {spec.get('minReplicas', 1)} "
        f"to {spec.get('maxReplicas')} replicas of {primary['metadata']['name']}"
    )
    await events.record(step, EventNote(reason=f"Autoscaler{done.title()}", message=message))
    return True
