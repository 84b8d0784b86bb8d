"""The workers of the resilience operator: write, and remove, a service's DestinationRule.

One DestinationRule per Service, ``<service>-resilience``, for the host
``<service>.<namespace>.svc.cluster.local``, holding the level's ``trafficPolicy``
(``models.resilience.LEVELS``); level 0 removes it. Both workers are idempotent: they bring
the rule to the wanted state from whatever they find, so a retry writes nothing twice, and a
rule of that name that is not ours is refused rather than replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

import activities.kube as kube
from models.operator import StepInput
from models.resilience import (
    LEVELS,
    OPERATOR,
    LevelApplied,
    PolicyRemoved,
    ResilienceData,
    ResilienceSpec,
)

Step = StepInput[ResilienceSpec, ResilienceData]

RESILIENCE = kube.Owner(OPERATOR, refusals_are_final=True)
#: The DestinationRule's API.
GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "destinationrules"
#: The level a rule holds, on the rule.
LEVEL_ANNOTATION = "autopilot.dev/resilience-level"


def rule_name(step: Step) -> str:
    """``<service>-resilience``."""
    return f"{step.target.name}-resilience"


def wanted_rule(step: Step, level: int) -> kube.Json:
    """The DestinationRule of ``level`` for the step's Service."""
    target = step.target
    metadata = RESILIENCE.metadata(
        rule_name(step),
        target.namespace,
        step.workflow_id,
        annotations={LEVEL_ANNOTATION: str(level)},
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DestinationRule",
        "metadata": metadata,
        "spec": {
            "host": f"{target.name}.{target.namespace}.svc.cluster.local",
            "trafficPolicy": LEVELS[level],
        },
    }


async def _read(step: Step) -> kube.Json | None:
    api = kube.custom()
    return await RESILIENCE.read_or_none(
        api.get_namespaced_custom_object,
        GROUP,
        VERSION,
        step.target.namespace,
        PLURAL,
        rule_name(step),
    )


async def _remove(step: Step) -> bool:
    """Delete our rule; whether there was one."""
    live = await _read(step)
    if live is None:
        return False
    RESILIENCE.refuse_foreign(live, "refusing to delete it")
    api = kube.custom()
    return await RESILIENCE.delete_exactly(
        live,
        api.delete_namespaced_custom_object,
        GROUP,
        VERSION,
        step.target.namespace,
        PLURAL,
        rule_name(step),
    )


@activity.defn(name=f"{OPERATOR}.apply_level")
async def apply_level(step: Step) -> LevelApplied:
    """Bring the service's DestinationRule to the planned level (0: no rule of ours)."""
    level = step.data.target_level if step.data.target_level is not None else step.data.level
    where = f"{step.target.namespace}/{rule_name(step)}"
    if level == 0:
        await _remove(step)
        activity.logger.info("%s removed (level 0)", where)
        return LevelApplied(level=0, rule=where)
    wanted = wanted_rule(step, level)
    api = kube.custom()

    def correct(live: kube.Json) -> bool:
        RESILIENCE.refuse_foreign(live, "refusing to replace it")
        annotations = live["metadata"].setdefault("annotations", {}) or {}
        if live.get("spec") == wanted["spec"] and annotations.get(LEVEL_ANNOTATION) == str(level):
            return False
        live["metadata"]["annotations"] = {**annotations, **wanted["metadata"]["annotations"]}
        live["spec"] = wanted["spec"]
        return True

    await kube.ensure(
        wanted,
        lambda: _read(step),
        lambda body: RESILIENCE.call(
            api.create_namespaced_custom_object,
            GROUP,
            VERSION,
            step.target.namespace,
            PLURAL,
            body,
            field_manager=RESILIENCE.field_manager,
        ),
        correct,
        lambda body: RESILIENCE.call(
            api.replace_namespaced_custom_object,
            GROUP,
            VERSION,
            step.target.namespace,
            PLURAL,
            rule_name(step),
            body,
            field_manager=RESILIENCE.field_manager,
        ),
    )
    activity.logger.info("%s at level %d", where, level)
    return LevelApplied(level=level, rule=where)


@activity.defn(name=f"{OPERATOR}.remove_policy")
async def remove_policy(step: Step) -> PolicyRemoved:
    """The Service is gone: remove our rule, if it is still there."""
    await _remove(step)
    return PolicyRemoved()


#: Every activity of the operator, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [apply_level, remove_policy]
