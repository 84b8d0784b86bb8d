"""The resilience operator: tighten a degrading service's traffic policy, relax it after.

Written only with the framework's public API (``models.senses``, ``workflows.engine``,
``activities.kube``), as a user's operator would be. One instance per opted-in Service
(annotation ``autopilot.dev/resilience``, whose value may be the spec as JSON), fed by:

* a Kubernetes sense on Services (start, and the end);
* two PromQL senses, the 5xx rate and the p99 latency of the service, every 5 s.

A reading over its bound tightens the service's DestinationRule one level (``LEVELS`` in
``models/resilience.py``); a level above ``approvalAbove`` waits for
``autopilot resilience approve``; ``recoverAfter`` healthy readings in a row step back one
level. Every change is recorded (``data.changes``) with the reading that caused it.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
import json
from datetime import timedelta

from temporalio import workflow

from models.operator import OperatorInput, OperatorStatus, Target
from models.resilience import (
    MAX_CHANGES,
    MAX_LEVEL,
    OPERATOR,
    OPT_IN,
    Change,
    ErrorRate,
    LatencyP99,
    LevelApplied,
    PolicyRemoved,
    ResilienceData,
    ResilienceSpec,
    ServiceGone,
    ServiceSeen,
)
from models.senses import Emit, KubeChange, PromQL, WatchKind
from workflows.engine import ANY, ActivityRef, Command, Ctx, Operator, OperatorWorkflow
from workflows.engine.versioning import auto_upgrade
from workflows.registry import register

C = Ctx[ResilienceSpec, ResilienceData]
Reading = ErrorRate | LatencyP99

# -- workers (in activities/resilience.py, by name) ------------------------------------------

apply_level = ActivityRef(
    f"{OPERATOR}.apply_level", returns=LevelApplied, summary="write the level's DestinationRule"
)
remove_policy = ActivityRef(
    f"{OPERATOR}.remove_policy", returns=PolicyRemoved, summary="remove our DestinationRule"
)

# -- what feeds it ------------------------------------------------------------------------------

_SELECTOR = (
    'reporter="destination",destination_service_namespace=~"{{ namespace }}",'
    'destination_service_name=~"{{ name }}"'
)
_BY = "by (destination_service_namespace, destination_service_name)"
_ALL = f"sum {_BY} (rate(istio_requests_total{{{_SELECTOR}}}[10s]))"
#: 5xx percent; ``or ... * 0`` makes a service with traffic and no 5xx read 0, not no data.
ERROR_RATE_QUERY = (
    f'(sum {_BY} (rate(istio_requests_total{{{_SELECTOR},response_code=~"5.."}}[10s]))'
    f" or {_ALL} * 0) / {_ALL} * 100"
)
LATENCY_QUERY = (
    f"histogram_quantile(0.99, sum by (le, destination_service_namespace, "
    f"destination_service_name) (rate(istio_request_duration_milliseconds_bucket"
    f"{{{_SELECTOR}}}[10s])))"
)
SERVICE_LABELS = ("destination_service_namespace", "destination_service_name")


def service_changed(change: KubeChange) -> list[Emit]:
    """An opted-in Service: start its instance (spec from the annotation); its end."""
    target = Target(namespace=change.namespace, name=change.name, kind="Service")
    if change.type == "deleted":
        return [Emit(target, ServiceGone())]
    raw = change.annotations.get(OPT_IN, "").strip()
    spec = json.loads(raw) if raw.startswith("{") else {}
    return [Emit(target, ServiceSeen(), id=f"{OPERATOR}:service:{change.uid}", start=spec)]


# -- guards --------------------------------------------------------------------------------------


def _bound(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> float:
    if isinstance(ctx.event, ErrorRate):
        return ctx.spec.max_error_rate
    return ctx.spec.max_latency_p99_ms


def _breaching(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> list[str]:
    """The metrics over their bound once this reading counts (no data changes nothing)."""
    now = set(ctx.data.breaching)
    value = ctx.event.value
    if value is not None:
        if value > _bound(ctx):
            now.add(ctx.event.metric)
        else:
            now.discard(ctx.event.metric)
    return sorted(now)


def degraded_within_bound(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> bool:
    """Over a bound, and one level tighter needs no approval."""
    next_level = ctx.data.level + 1
    return bool(_breaching(ctx)) and next_level <= min(MAX_LEVEL, ctx.spec.approval_above)


def degraded_beyond_bound(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> bool:
    """Over a bound, and one level tighter is beyond what it may do alone."""
    return bool(_breaching(ctx)) and ctx.data.level < MAX_LEVEL


def recovered(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> bool:
    """Healthy for ``recoverAfter`` readings in a row, with a level to step back from."""
    if _breaching(ctx) or ctx.event.value is None or ctx.data.level == 0:
        return False
    return ctx.data.healthy_readings + 1 >= ctx.spec.recover_after


def healthy_again(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> bool:
    """Waiting for approval, and the degradation passed (``recoverAfter`` healthy readings)."""
    if _breaching(ctx) or ctx.event.value is None:
        return False
    return ctx.data.healthy_readings + 1 >= ctx.spec.recover_after


# -- effects ------------------------------------------------------------------------------------


def _read(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> ResilienceData:
    """Count the reading: breaching metrics, the healthy streak, the last values."""
    breaching = _breaching(ctx)
    healthy = 0 if breaching or ctx.event.value is None else ctx.data.healthy_readings + 1
    values = {**ctx.data.last_values, ctx.event.metric: ctx.event.value}
    return ctx.data.model_copy(
        update={"breaching": breaching, "healthy_readings": healthy, "last_values": values}
    )


def _why(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> str:
    event = ctx.event
    shown = "no data" if event.value is None else f"{event.value:.4g}"
    return f"{event.metric} {shown} (bound {_bound(ctx):g})"


def count_reading(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> ResilienceData:
    """A reading that changes nothing but the counts."""
    return _read(ctx)


def _breaches(ctx: Ctx[ResilienceSpec, ResilienceData, Reading], data: ResilienceData) -> str:
    """The metrics over their bound, with their last values (not only this reading's)."""
    bounds = {"error-rate": ctx.spec.max_error_rate, "latency-p99": ctx.spec.max_latency_p99_ms}
    parts = []
    for metric in data.breaching:
        value = data.last_values.get(metric)
        shown = "no data" if value is None else f"{value:.4g}"
        parts.append(f"{metric} {shown} (bound {bounds.get(metric, 0):g})")
    return ", ".join(parts)


def plan_tighter(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> ResilienceData:
    """Degraded: aim one level tighter, and say why: what is over its bound.

    The reading that triggers it may be a healthy one of another metric (the latency read
    while the error rate is still over): the reason names the metrics that are over.
    """
    data = _read(ctx)
    reason = f"degraded: {_breaches(ctx, data)}"
    update = {"target_level": data.level + 1, "reason": reason, "approved_by": None}
    return data.model_copy(update=update)


def plan_looser(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> ResilienceData:
    """Recovered: aim one level looser."""
    data = _read(ctx)
    reason = f"recovered: {data.healthy_readings} healthy readings, last {_why(ctx)}"
    update = {"target_level": data.level - 1, "reason": reason, "healthy_readings": 0}
    return data.model_copy(update=update)


def drop_request(ctx: Ctx[ResilienceSpec, ResilienceData, Reading]) -> ResilienceData:
    """The degradation passed while the tighter level waited for approval."""
    data = _read(ctx)
    reason = f"not needed any more: {_why(ctx)}"
    return data.model_copy(update={"target_level": None, "reason": reason, "healthy_readings": 0})


def approved(ctx: C) -> ResilienceData:
    """A human approved the tighter level."""
    by = ctx.command.by if ctx.command else None
    return ctx.data.model_copy(update={"approved_by": by})


def declined(ctx: C) -> ResilienceData:
    """A human declined it: stay at the current level."""
    by = ctx.command.by if ctx.command else "someone"
    return ctx.data.model_copy(update={"target_level": None, "reason": f"declined by {by}"})


def record_level(ctx: Ctx[ResilienceSpec, ResilienceData, LevelApplied]) -> ResilienceData:
    """The level is written: record the change, and why."""
    data = ctx.data
    change = Change(
        at=ctx.now,
        from_level=data.level,
        to_level=ctx.event.level,
        reason=data.reason[:512],
        approved_by=data.approved_by,
    )
    changes = [*data.changes, change][-MAX_CHANGES:]
    update = {
        "level": ctx.event.level,
        "target_level": None,
        "approved_by": None,
        "healthy_readings": 0,
        "changes": changes,
    }
    return data.model_copy(update=update)


def details(ctx: C) -> str:
    """Markdown for the Temporal UI's current details."""
    data = ctx.data
    values = ", ".join(
        f"{name} {'no data' if value is None else f'{value:.4g}'}"
        for name, value in sorted(data.last_values.items())
    )
    last = data.changes[-1] if data.changes else None
    changed = f"\n\nlast change: {last.from_level} → {last.to_level}, {last.reason}" if last else ""
    return f"level **{data.level}**/{MAX_LEVEL}; {values or 'no readings yet'}{changed}"


# -- the machine --------------------------------------------------------------------------------

resilience = Operator(
    OPERATOR,
    spec=ResilienceSpec,
    data=ResilienceData,
    initial="Watching",
    senses=[
        WatchKind(
            group="",
            version="v1",
            plural="services",
            annotation=OPT_IN,
            map=service_changed,
            sends=(ServiceSeen, ServiceGone),
        ),
        PromQL(
            "error-rate",
            ERROR_RATE_QUERY,
            sends=ErrorRate,
            interval=timedelta(seconds=5),
            labels=SERVICE_LABELS,
        ),
        PromQL(
            "latency-p99",
            LATENCY_QUERY,
            sends=LatencyP99,
            interval=timedelta(seconds=5),
            labels=SERVICE_LABELS,
        ),
    ],
    details=details,
    description=(
        "Adaptive resilience: tightens a degrading Istio service's DestinationRule (outlier "
        "detection, then connection-pool limits) one level per reading over its bound, asks a "
        "human before a level above approvalAbove, and steps back once it is healthy again."
    ),
)

resilience.state("Watching", settled=True, doc="reads the service's 5xx rate and p99 latency")
resilience.state("Tightening", run=[apply_level], doc="write the tighter level")
resilience.state(
    "AwaitingApproval", settled=True, doc="a level above approvalAbove waits for approve"
)
resilience.state("Relaxing", run=[apply_level], doc="write the looser level")
resilience.state("Removing", run=[remove_policy], doc="the Service is gone: remove our rule")
resilience.state("Gone", final=True, doc="the Service is gone")

for reading in (ErrorRate, LatencyP99):
    resilience.on("Watching", reading, go="Tightening", when=degraded_within_bound, do=plan_tighter)
    resilience.on(
        "Watching", reading, go="AwaitingApproval", when=degraded_beyond_bound, do=plan_tighter
    )
    resilience.on("Watching", reading, go="Relaxing", when=recovered, do=plan_looser)
    resilience.on("Watching", reading, go=None, do=count_reading, doc="count it")
    resilience.on("AwaitingApproval", reading, go="Watching", when=healthy_again, do=drop_request)
    resilience.on("AwaitingApproval", reading, go=None, do=count_reading, doc="count it")

resilience.on(ANY, ServiceSeen, go=None, doc="already watching it")
resilience.on(
    "AwaitingApproval",
    Command("approve", doc="Approve the tighter level the service waits for."),
    go="Tightening",
    do=approved,
)
resilience.on(
    "AwaitingApproval",
    Command("decline", doc="Decline the tighter level: the service stays where it is."),
    go="Watching",
    do=declined,
)
resilience.on(["Tightening", "Relaxing"], LevelApplied, go="Watching", do=record_level)
resilience.on(ANY, ServiceGone, go="Removing")
resilience.on("Removing", PolicyRemoved, go="Gone")
resilience.check()


# Auto-upgrade: a fix to how a service is protected must reach the services already watched.
@register
@workflow.defn(name=OPERATOR, versioning_behavior=auto_upgrade())
class ResilienceWorkflow(OperatorWorkflow):
    """One resilience instance per Service: ``resilience/<namespace>/<service>``."""

    operator = resilience

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the machine until the Service is gone."""
        return await self.run_operator(input)
