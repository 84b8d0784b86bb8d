"""Read the ``MetricTemplate`` resources an analysis uses, at that analysis.

Why at every analysis, inside ``canary.analyse``: a platform team edits a shared template
and the next interval of every rollout uses it, with no workflow command added (histories
recorded before templates existed replay unchanged). Each resource is read once per
analysis through the shared Kubernetes layer, in the ref's namespace or else the canary's
(Flagger's rule, so templates may live in one namespace for all teams), from our API group
and, when that has none, from Flagger's (a cluster in the middle of moving from Flagger).

A template that is missing, unreadable or invalid is not an exception: it is a *problem*
that fails the metric's check with the reason (``MetricTemplate ops/error-rate not found``),
as Flagger fails the check, and the rollout's ``threshold`` decides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from activities import kube
from activities.canary.objects import CANARY
from models.canary import CanarySpec
from models.canary_watch import CANARY_GROUP, CANARY_VERSION
from models.flagger import FLAGGER_API_VERSION, ResourceError
from models.metric_templates import (
    METRIC_TEMPLATE_PLURAL,
    MetricTemplateSpec,
    load_metric_template,
)
from models.promql import template_resource

#: Where a MetricTemplate is looked for, in order: ours, then Flagger's.
GROUP_VERSIONS = ((CANARY_GROUP, CANARY_VERSION), tuple(FLAGGER_API_VERSION.split("/")))
#: Seconds one read may take (an analysis must not wait long for a template).
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Templates:
    """The resources one analysis uses: found ones by ``namespace/name``, and problems."""

    found: dict[str, MetricTemplateSpec] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


async def _read(key: str) -> MetricTemplateSpec | str:
    """One template, or the problem with it (never raises)."""
    namespace, name = key.split("/", 1)
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            for group, version in GROUP_VERSIONS:
                obj = await CANARY.read_or_none(
                    kube.custom().get_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    METRIC_TEMPLATE_PLURAL,
                    name,
                )
                if obj is not None:
                    return load_metric_template(obj)
    except ResourceError as error:
        return f"MetricTemplate {key} is invalid: {'; '.join(error.problems)}"
    except Exception as error:  # no permission, API server away: a reason, not a crash
        status = getattr(error, "status", None)
        why = f"HTTP {status}" if status else type(error).__name__
        return f"MetricTemplate {key} could not be read ({why})"
    return f"MetricTemplate {key} not found"


async def read_templates(spec: CanarySpec, namespace: str) -> Templates:
    """Every ``MetricTemplate`` resource the spec's metrics name, read once each."""
    keys = sorted(
        {
            key
            for metric in spec.analysis.metrics
            if (key := template_resource(metric, spec, namespace)) is not None
        }
    )
    if not keys:
        return Templates()
    read = await asyncio.gather(*(_read(key) for key in keys))
    templates = Templates()
    for key, result in zip(keys, read, strict=True):
        if isinstance(result, str):
            templates.problems[key] = result
        else:
            templates.found[key] = result
    return templates
