"""How an operator instance looks in a terminal: Rich renderables, no I/O.

``status`` and ``watch`` draw the same :func:`status_view`, so what a user watches live is
what they can print once. The generic part (state, outcome, steps, commands, link) fits
every operator; a machine whose data has a ``canary_weight`` also gets a weight bar, its
last metric values against their thresholds and the gate it waits at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cli.targets import Snapshot
from models.approvals import ApproverRules
from models.operator import CommandReceipt, OperatorStatus, TransitionRecord

if TYPE_CHECKING:
    from models.canary import CanarySpec

#: Colour of each outcome.
OUTCOME_STYLE = {
    "running": "cyan",
    "waiting": "yellow",
    "succeeded": "green",
    "failed": "red",
}

#: Canary states that are manual gates, and what each gate guards.
CANARY_GATES = {
    "Waiting": "before the canary starts",
    "AwaitingStep": "before the next weight increase",
    "AwaitingPromotion": "before promotion",
}

#: How many recent steps ``status`` shows in a table (``-o json`` shows all).
RECENT_STEPS = 15


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``3m12s ago``-style age of ``when``."""
    if when is None:
        return ""
    return f"{duration(max(timedelta(), (now or datetime.now(UTC)) - when))} ago"


def duration(value: timedelta) -> str:
    """``1h2m``, ``3m12s``, ``45s``: short and human."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def clock(when: datetime | None) -> str:
    """A timestamp in UTC, to the second."""
    if when is None:
        return ""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def outcome_text(outcome: str) -> Text:
    """The outcome word in its colour."""
    return Text(outcome, style=f"bold {OUTCOME_STYLE.get(outcome, '')}".strip())


def _fields() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def status_view(found: Snapshot, *, all_steps: bool = False) -> RenderableType:
    """Everything ``autopilot status`` shows about one workflow."""
    status = found.status
    parts: list[RenderableType] = []
    title = Text.assemble(
        (status.workflow_id, "bold"),
        f"  {status.operator} for {status.target.kind} ",
        (f"{status.target.namespace}/{status.target.name}", "bold"),
    )
    parts.append(title)
    fields = _fields()
    state = Text(status.state, style="bold")
    if status.paused and not status.final:
        state.append("  (paused)", style="yellow")
    if status.final:
        state.append(f"  since {clock(status.since)}", style="dim")
    else:
        state.append(f"  for {ago(status.since).removesuffix(' ago')}", style="dim")
    fields.add_row("state", state)
    fields.add_row("outcome", outcome_text(found.outcome))
    execution = found.execution
    if found.closed_at is not None:
        execution += f", closed {clock(found.closed_at)}"
    elif found.started_at is not None:
        execution += f", started {clock(found.started_at)}"
    fields.add_row("workflow", execution)
    if status.timer_due is not None:
        fields.add_row("timer", f"fires {clock(status.timer_due)}")
    if "canary_weight" in status.data:
        _canary_fields(fields, status)
    if status.operator == "autoroute":
        _route_fields(fields, status)
    gate = pending_gate(status)
    if gate is not None:
        fields.add_row("pending", gate)
    if status.accepted_commands:
        fields.add_row("accepts", ", ".join(status.accepted_commands))
    approvers = approvers_of(status.spec)
    if approvers:
        fields.add_row("approvers", escape("\n".join(approvers)))
    message = status.data.get("message")
    if isinstance(message, str) and message:
        fields.add_row("message", escape(message))
    failure = status.data.get("failure")
    if isinstance(failure, str) and failure:
        fields.add_row("failure", Text(failure, style="red"))
    if status.error:
        fields.add_row("error", Text(status.error, style="red"))
    if found.note:
        fields.add_row("note", Text(found.note, style="yellow"))
    fields.add_row("ui", Text(found.url, style="link " + found.url))
    parts.append(fields)
    metrics = _metrics_table(status)
    if metrics is not None:
        parts.append(metrics)
    judged = _judge_table(status)
    if judged is not None:
        parts.append(judged)
    if status.transitions:
        parts.append(steps_table(status.transitions, all_steps=all_steps))
    if status.commands:
        parts.append(_commands_table(status))
    return Group(*parts)


def _route_fields(fields: Table, status: OperatorStatus) -> None:
    """The autoroute operator's host, path, pull request, verification, conflict and drift."""
    data = status.data
    request = data.get("request") or {}
    if request:
        fields.add_row("host", escape(str(request.get("host", ""))))
        fields.add_row("path", escape(str(request.get("path", ""))))
        fields.add_row("gateway", escape(str(request.get("gateway", ""))))
    if data.get("virtual_service"):
        fields.add_row("route", escape(f"VirtualService {data['virtual_service']}"))
    if data.get("pr"):
        fields.add_row(
            "pr", escape(f"#{data['pr']} ({data.get('pr_state', '')}) {data.get('pr_url', '')}")
        )
    if data.get("verification"):
        verdict = "passed" if data.get("verified") else "not yet"
        fields.add_row("verified", escape(f"{verdict}: {data['verification']}"))
    for key in ("conflict", "drift", "removal"):
        if data.get(key):
            fields.add_row(key, escape(str(data[key])))


def _canary_fields(fields: Table, status: OperatorStatus) -> None:
    data = status.data
    weight = int(data.get("canary_weight") or 0)
    plan = _plan(status.spec)
    bar = Table.grid(padding=(0, 1))
    bar.add_column(no_wrap=True)
    bar.add_column()
    step = ""
    if plan:
        index = min(int(data.get("step") or 0), len(plan) - 1)
        step = f"  step {index + 1}/{len(plan)} of {', '.join(map(str, plan))}"
    bar.add_row(
        ProgressBar(total=100, completed=weight, width=30),
        Text(f"{weight}% canary, {100 - weight}% primary{step}"),
    )
    fields.add_row("weight", bar)
    revision, stable = data.get("revision"), data.get("stable_revision")
    if revision or stable:
        fields.add_row("revision", f"{revision or '?'} (primary runs {stable or '?'})")
    if "failed_checks" in data:
        threshold = threshold_of(status.spec)
        fields.add_row(
            "checks",
            f"failed {data.get('failed_checks', 0)}"
            + (f"/{threshold}" if threshold else "")
            + f", analyses {data.get('iterations', 0)}",
        )
    outcome = data.get("outcome")
    if isinstance(outcome, str) and outcome:
        fields.add_row("result", outcome)


def canary_spec_of(spec: dict[str, Any]) -> CanarySpec | None:
    """The canary spec in a status, or None (another operator, or a spec that no longer loads)."""
    if not spec:
        return None
    from models.canary import CanarySpec  # here: only canaries need its models (and YAML)

    try:
        return CanarySpec.model_validate(spec)
    except ValidationError:
        return None


def _plan(spec: dict[str, Any]) -> list[int]:
    loaded = canary_spec_of(spec)
    return loaded.analysis.weight_plan() if loaded is not None else []


def threshold_of(spec: dict[str, Any]) -> int | None:
    """``analysis.threshold`` of a canary spec: failed checks before rollback."""
    loaded = canary_spec_of(spec)
    return loaded.analysis.threshold if loaded is not None else None


def pending_gate(status: OperatorStatus) -> Text | None:
    """The gate (or approval) the machine waits at, and the command that opens it."""
    approve = f"autopilot approve {status.workflow_id}"
    if "canary_weight" in status.data and status.state in CANARY_GATES:
        what = CANARY_GATES[status.state]
        if status.data.get("gate_open"):
            return Text(f"gate {what}: approved; waiting for its confirm hooks")
        return Text.assemble(f"gate {what}: waiting for ", (approve, "bold"))
    if "approve" in status.accepted_commands and not status.final:
        return Text.assemble("approval: ", (approve, "bold"))
    return None


def _bound(value: Any, prefix: str) -> str:
    return f"{prefix} {value:g}" if isinstance(value, int | float) else ""


def _metrics_table(status: OperatorStatus) -> Table | None:
    analysis = status.data.get("last_analysis")
    if not isinstance(analysis, dict) or not analysis.get("metrics"):
        return None
    table = Table(
        title=f"last analysis {ago(_parse_time(analysis.get('at')))}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("threshold")
    table.add_column("result")
    for metric in analysis["metrics"]:
        value = metric.get("value")
        bounds = " ".join(
            b for b in (_bound(metric.get("min"), "≥"), _bound(metric.get("max"), "≤")) if b
        )
        result = str(metric.get("status", ""))
        style = {"pass": "green", "fail": "red", "no_data": "yellow"}.get(result, "")
        table.add_row(
            str(metric.get("name", "")),
            f"{value:.4g}" if isinstance(value, int | float) else "no data",
            bounds,
            Text(result.replace("_", " "), style=style),
        )
    return table


_CLASS_STYLE = {"Pass": "green", "High": "red", "Low": "red", "NoData": "yellow"}
_VERDICT_STYLE = {"Pass": "green", "Fail": "red", "Marginal": "yellow", "NoData": "yellow"}


def _number(value: Any, pattern: str = "{:.4g}") -> str:
    return pattern.format(value) if isinstance(value, int | float) else ""


def _judge_table(status: OperatorStatus) -> Table | None:
    """The judge's verdict on the last analysis: canary against primary, metric by metric."""
    analysis = status.data.get("last_analysis")
    judge = analysis.get("judge") if isinstance(analysis, dict) else None
    if not isinstance(judge, dict):
        return None
    verdict = str(judge.get("verdict", ""))
    score = _number(judge.get("score"), "score {:.0f}") or "no score"
    why = f"; {judge['message']}" if judge.get("message") else ""
    title = Text.assemble(
        "judge ",
        (verdict, _VERDICT_STYLE.get(verdict, "")),
        f" ({score}{why}) over ",
        str(judge.get("window", "")),
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("metric", "canary", "primary", "ratio", "p-value", "result"):
        table.add_column(column, justify="left" if column in ("metric", "result") else "right")
    for metric in judge.get("metrics") or []:
        result = str(metric.get("classification", ""))
        flags = [
            f
            for f, on in (("critical", metric.get("critical")), ("dry run", metric.get("dry_run")))
            if on
        ]
        note = f" ({', '.join(flags)})" if flags else ""
        message = f": {metric['message']}" if result == "NoData" and metric.get("message") else ""
        table.add_row(
            str(metric.get("name", "")),
            _number(metric.get("canary_median")),
            _number(metric.get("primary_median")),
            _number(metric.get("ratio"), "{:.2f}"),
            _number(metric.get("p_value"), "{:.2g}"),
            Text(result + note + message, style=_CLASS_STYLE.get(result, "")),
        )
    return table


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def steps_table(transitions: list[TransitionRecord], *, all_steps: bool = False) -> Table:
    """The transitions so far, oldest first (the last few unless ``all_steps``)."""
    shown = transitions if all_steps else transitions[-RECENT_STEPS:]
    hidden = len(transitions) - len(shown)
    table = Table(
        title="steps" + (f" (last {len(shown)} of {len(transitions)})" if hidden else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("at", no_wrap=True)
    table.add_column("from")
    table.add_column("to")
    table.add_column("on")
    table.add_column("by")
    for record in shown:
        table.add_row(
            clock(record.at),
            record.source,
            record.target if record.target != record.source else "(stays)",
            record.event,
            record.by or "",
        )
    return table


def _commands_table(status: OperatorStatus) -> Table:
    table = Table(title="commands", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("at", no_wrap=True)
    table.add_column("command")
    table.add_column("by")
    table.add_column("via")
    table.add_column("in state")
    table.add_column("reason", overflow="fold")
    for record in status.commands:
        table.add_row(
            clock(record.at),
            record.command,
            record.by,
            _via(record.via),
            record.state,
            escape(record.reason or ""),
        )
    return table


def approvers_of(spec: dict[str, Any]) -> list[str]:
    """The target's approver rules (its spec's ``approvers``), one line each; none: empty."""
    try:
        rules = ApproverRules.model_validate(spec.get("approvers") or {})
    except ValidationError:
        return []
    return rules.summary()


def _via(via: str | None) -> str:
    """How a command came: its name authenticated by the API server, or as the sender wrote."""
    if via == "kubernetes":
        return "Approval (authenticated)"
    if via == "resource":
        return "the target's resource"
    return "temporal (name unchecked)" if via == "temporal" else ""


def receipt_view(receipt: CommandReceipt, workflow: str) -> Text:
    """What an accepted command prints."""
    text = Text.assemble(
        ("✓ ", "green"),
        (receipt.command, "bold"),
        f" accepted from {receipt.by} for {workflow} in state ",
        (receipt.state, "bold"),
    )
    if receipt.applied:
        if receipt.now != receipt.state:
            text.append_text(Text.assemble(" → now ", (receipt.now, "bold")))
    else:
        text.append(
            f"; superseded: {receipt.detail or f'the machine had moved on to {receipt.now}'}",
            style="yellow",
        )
    return text


def step_line(record: TransitionRecord, workflow: str) -> Text:
    """One transition as a log line (``watch``)."""
    return Text.assemble((clock(record.at), "dim"), f" {workflow}: ", step_text(record))


def step_text(record: TransitionRecord) -> Text:
    """``InReview → Applying on /approve by ann``, ``Open (stays) on Vote``: one transition."""
    how = f" on {record.event}" + (f" by {record.by}" if record.by else "")
    if record.target == record.source:
        return Text.assemble((record.source, "bold"), f" (stays){how}")
    return Text.assemble(f"{record.source} → ", (record.target, "bold"), how)
