"""The activities that move a canary through its life: the workers of each state.

Each one is idempotent (state entries are retried, and replayed after a crash): it reads
what is live, changes only what differs, and reports what it found as an event for the
state machine. None waits long: readiness is polled for at most
:data:`workloads.MAX_WAIT_SECONDS`, and longer waits are the workflow's durable timers.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import kube
from activities.canary import autoscalers, events, services, webhooks, workloads
from activities.canary.istio_routes import route_options
from activities.canary.objects import (
    CANARY,
    REJECTED_REASON,
    REJECTED_REVISION,
    REVISION,
    owned_by,
)
from activities.canary.routing import Router
from activities.canary.routing import router_for as router_of_provider
from activities.errors import non_retryable
from models.canary import (
    CanaryStep,
    Finalised,
    HooksRan,
    HookType,
    Initialized,
    Promoted,
    RolledBack,
    Started,
    WeightApplied,
)
from models.kube_events import EventNote


def _names(step: CanaryStep) -> tuple[str, str]:
    return step.target.namespace, step.spec.target_ref.name


def router_for(step: CanaryStep) -> Router:
    """The router for this canary's provider."""
    return router_of_provider(step.spec, step.target.namespace, step.workflow_id)


async def _target(step: CanaryStep) -> dict[str, Any]:
    namespace, name = _names(step)
    target = await workloads.read_or_none(namespace, name)
    if target is None:
        raise non_retryable(f"Deployment {namespace}/{name} (targetRef) does not exist")
    return target


async def _retire_canary(step: CanaryStep) -> None:
    """Scale the target to zero once the primary can take the traffic."""
    namespace, name = _names(step)
    primary = await workloads.wait_ready(namespace, workloads.primary_name(name))
    if not primary.ready:
        raise ApplicationError(f"waiting for the primary: {primary.message}")  # retried
    try:
        await workloads.scale(namespace, name, 0)
    except Exception as error:
        if not kube.is_not_found(error):
            raise


@activity.defn(name="canary.initialize")
async def initialize(step: CanaryStep) -> Initialized:
    """Create what a canary needs (primary, Services, routes) and say what to roll out.

    A new primary (first run) takes the target's current template: there is nothing to roll
    out, as in Flagger. Traffic starts at 100/0 for every new analysis.
    """
    namespace = step.target.namespace
    target = await _target(step)
    selector = workloads.selector_of(target)
    revision = workloads.target_revision(target)
    primary, bootstrapped = await workloads.ensure_primary(target, revision, step.workflow_id)
    CANARY.refuse_foreign(primary)
    await autoscalers.reconcile(step, primary, init=True)
    owners = owned_by(target)
    await services.reconcile(step.spec, namespace, selector, step.workflow_id, owners)
    router = router_for(step)
    await router.reconcile(owners)
    await router.set_routes(100, 0)
    annotations = workloads.annotations_of(primary)
    stable = annotations.get(REVISION)
    rejected = annotations.get(REJECTED_REVISION) == revision and step.data.retry_of != revision
    needs_rollout = revision != stable and not rejected
    if not needs_rollout:
        await _retire_canary(step)
    return Initialized(
        revision=revision,
        stable_revision=stable,
        needs_rollout=needs_rollout,
        rejected=rejected,
        rejected_reason=annotations.get(REJECTED_REASON) if rejected else None,
        bootstrapped=bootstrapped,
        canary_replicas=max(1, (primary.get("spec") or {}).get("replicas") or 1),
    )


@activity.defn(name="canary.start")
async def start(step: CanaryStep) -> Started:
    """Scale the canary up to the primary's size; once it is ready, run pre-rollout hooks."""
    namespace, name = _names(step)
    target = await _target(step)
    primary = await workloads.read(namespace, workloads.primary_name(name))
    replicas = max(1, primary["spec"].get("replicas") or 1)
    if target["spec"].get("replicas") != replicas:
        await workloads.scale(namespace, name, replicas)
    state = await workloads.wait_ready(namespace, name, minimum=1)
    if not state.ready:
        return Started(ready=False, message=state.message)
    results = await webhooks.run_hooks(step, HookType.PRE_ROLLOUT)
    hooks = HooksRan(type=HookType.PRE_ROLLOUT, ok=all(r.ok for r in results), results=results)
    return Started(ready=True, message=state.message, hooks=hooks)


@activity.defn(name="canary.set_weight")
async def set_weight(step: CanaryStep) -> WeightApplied:
    """Route ``data.canary_weight`` percent to the canary, reconciling from the live routes.

    Traffic to the canary is only ever raised when the canary is ready; otherwise the
    weight is held and the event says why. A strategy's extras at this weight (a mirror,
    the affinity cookie route) come with it (:func:`~activities.canary.istio_routes.route_options`).
    """
    namespace, name = _names(step)
    desired = step.data.canary_weight
    router = router_for(step)
    live = await router.get_routes()
    if desired > live.canary:
        state = await workloads.wait_ready(namespace, name, minimum=1)
        if not state.ready:
            held = f"canary weight held at {live.canary} (wanted {desired}): {state.message}"
            await events.record(step, EventNote(type="Warning", reason="WeightHeld", message=held))
            return WeightApplied(
                primary=live.primary,
                canary=live.canary,
                previous_primary=live.primary,
                previous_canary=live.canary,
                resource_version=live.resource_version,
                held=True,
                message=state.message,
            )
    options = route_options(step, desired)
    routes = await router.set_routes(100 - desired, desired, live=live, options=options)
    if routes.canary != live.canary:
        await events.record(step, _weight_note(step, live.canary, routes.canary))
    return WeightApplied(
        primary=routes.primary,
        canary=routes.canary,
        previous_primary=live.primary,
        previous_canary=live.canary,
        resource_version=routes.resource_version,
        conflicts=routes.conflicts,
    )


def _weight_note(step: CanaryStep, before: int, after: int) -> EventNote:
    """``WeightChanged``: the traffic split the VirtualService has now, and the step."""
    plan = step.spec.analysis.weight_plan()
    where = f" (step {step.data.step + 1}/{len(plan)})" if step.state == "Progressing" else ""
    of = " of the requests matching analysis.match" if step.spec.analysis.match else ""
    return EventNote(
        reason="WeightChanged",
        message=f"canary weight {before} -> {after}{where}: routing {100 - after}/{after} "
        f"(primary/canary){of} for revision {step.data.revision}",
        key=f"weight {before} -> {after} for {step.data.revision}",
    )


@activity.defn(name="canary.promote")
async def promote(step: CanaryStep) -> Promoted:
    """Copy the analysed template to the primary and report whether it rolled out."""
    namespace, name = _names(step)
    target = await _target(step)
    revision = workloads.target_revision(target)
    if step.data.revision and revision != step.data.revision:
        raise non_retryable(
            f"Deployment {namespace}/{name} changed to revision {revision} while revision "
            f"{step.data.revision} was being promoted; starting over"
        )
    primary = await workloads.promote_template(target, revision, step.workflow_id)
    await autoscalers.reconcile(step, primary, init=False)
    copied = f"promoting revision {revision}: template copied to {workloads.primary_name(name)}"
    await events.record(step, EventNote(reason="Promoting", message=copied))
    state = await workloads.wait_ready(namespace, workloads.primary_name(name))
    return Promoted(revision=revision, ready=state.ready, message=state.message)


@activity.defn(name="canary.finalise")
async def finalise(step: CanaryStep) -> Finalised:
    """After promotion: all traffic to the primary, canary scaled to zero."""
    await router_for(step).set_routes(100, 0)
    await _retire_canary(step)
    primary = workloads.primary_name(step.spec.target_ref.name)
    promoted = f"revision {step.data.revision} promoted: {primary} runs it and takes all traffic"
    await events.record(step, EventNote(reason="Promoted", message=promoted))
    return Finalised()


@activity.defn(name="canary.rollback")
async def rollback(step: CanaryStep) -> RolledBack:
    """Traffic back to the primary at once, then the canary scaled down and marked rejected.

    Routing comes first: it is what users feel. A target that no longer exists is fine, and
    so are routes the garbage collector removed with it (they are its own).
    """
    namespace, name = _names(step)
    try:
        await router_for(step).set_routes(100, 0)
    except Exception as error:
        if not kube.is_not_found(error) or await workloads.read_or_none(namespace, name):
            raise
    try:
        await workloads.scale(namespace, name, 0)
    except Exception as error:
        if not kube.is_not_found(error):
            raise
    reason = step.data.failure or f"{step.state.lower()} by the canary operator"
    if step.data.revision:
        await workloads.mark_rejected(namespace, name, step.data.revision, reason)
    back = f"rolled back revision {step.data.revision}: all traffic on the primary; {reason}"
    await events.record(step, EventNote(type="Warning", reason="RolledBack", message=back))
    return RolledBack()
