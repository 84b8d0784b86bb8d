"""What the Temporal UI shows of a rollout: the workflow's current details, as markdown."""

from workflows.canary.guards import C, plan


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
    if data.failure:
        lines.append(f"**failure**: {data.failure}")
    if data.message:
        lines.append(data.message)
    return "\n\n".join(lines)
