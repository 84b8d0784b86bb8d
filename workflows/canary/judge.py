"""The judge's verdict as the Temporal UI shows it: a table in the workflow's current details.

Why its own module: the verdict is computed in the ``canary.analyse`` activity
(``activities/canary/judge.py``) and the machine only reads its outcome; what is left for the
workflow is showing it. Pure and deterministic: it formats data already in history.
"""

from models.canary import AnalysisResult


def _number(value: float | None, pattern: str = "{:.4g}") -> str:
    return pattern.format(value) if value is not None else "-"


def judge_details(analysis: AnalysisResult | None) -> str | None:
    """Markdown: the verdict and score, then canary against primary for every metric."""
    if analysis is None or analysis.judge is None:
        return None
    judge = analysis.judge
    score = _number(judge.score, "{:.0f}") if judge.score is not None else "none"
    why = f" ({judge.message})" if judge.message else ""
    lines = [
        f"judge **{judge.verdict.value}**, score {score} (pass {judge.pass_score:g}, "
        f"marginal {judge.marginal_score:g}) over `{judge.window}`{why}",
        "",
        "| metric | canary | primary | ratio | p-value | result |",
        "|---|---|---|---|---|---|",
    ]
    for metric in judge.metrics:
        flags = [f for f, on in (("critical", metric.critical), ("dry run", metric.dry_run)) if on]
        result = metric.classification.value + (f" ({', '.join(flags)})" if flags else "")
        if metric.message:
            result += f": {metric.message}"
        lines.append(
            f"| {metric.name} | {_number(metric.canary_median)} | "
            f"{_number(metric.primary_median)} | {_number(metric.ratio, '{:.2f}')} | "
            f"{_number(metric.p_value, '{:.2g}')} | {result} |"
        )
    return "\n".join(lines)
