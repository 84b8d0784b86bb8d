"""What the Temporal UI and the status mirror see of a rollout: details and search attributes."""

import hashlib
from collections.abc import Callable
from typing import Any

from temporalio import workflow

from models.canary_watch import DATA_HASH_ATTRIBUTE
from workflows.canary.guards import C, plan
from workflows.canary.judge import judge_details


def details(ctx: C) -> str:
    """Markdown for the workflow's current details."""
    data, analysis = ctx.data, ctx.spec.analysis
    steps = plan(ctx)
    lines = [
        f"weight **{data.canary_weight}%** (step {min(data.step + 1, len(steps))}/{len(steps)}: "
        f"{', '.join(map(str, steps))})",
        f"revision `{data.revision}` over `{data.stable_revision}`",
        f"failed checks {data.failed_checks}/{analysis.threshold}, analyses {data.iterations}",
    ]
    if data.last_analysis is not None:
        lines.append(f"last analysis: {data.last_analysis.summary()}")
    verdict = judge_details(data.last_analysis)
    if verdict is not None:
        lines.append(verdict)
    if data.failure:
        lines.append(f"**failure**: {data.failure}")
    if data.message:
        lines.append(data.message)
    return "\n\n".join(lines)


#: Temporal patch: rollouts started before ``CanaryDataHash`` existed replay without it.
DATA_HASH_PATCH = "canary-data-hash"


def data_hash(ctx: C) -> str | None:
    """``CanaryDataHash``: 16 hex digits of the data; they change whenever the data does.

    Why: the status mirror reads one visibility listing per interval and asks for the full
    status only of the rollouts whose listing changed. State and weight alone miss what
    stays in one state (a failed pre-rollout hook, an analysis at the same weight, an
    approval at a gate), which ``kubectl get canaries`` then showed up to a minute late.
    None (nothing upserted) when replaying a history recorded before the attribute existed.
    """
    if workflow.in_workflow() and not workflow.patched(DATA_HASH_PATCH):
        return None
    return hashlib.sha256(ctx.data.model_dump_json().encode()).hexdigest()[:16]


#: The canary's own search attributes, besides the engine's.
SEARCH_ATTRIBUTES: dict[str, Callable[[C], Any]] = {
    "CanaryWeight": lambda ctx: ctx.data.canary_weight,
    DATA_HASH_ATTRIBUTE: data_hash,
}
