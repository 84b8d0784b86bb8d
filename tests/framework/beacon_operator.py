"""A test operator written only with the public API, registered by nobody but its test.

A *beacon* is a ConfigMap labelled ``autopilot.dev/beacon=true``; the operator instance is
``beacon/<namespace>/<name>``. It is fed by all three generic senses and steered by its own
command, which is what the framework test (``test_framework_e2e.py``) checks:

* **a Kubernetes kind**: the ConfigMap's ``level`` (added/changed) and its deletion;
* **a PromQL template**: the request rate of the Deployment of the same name, every 2 s;
* **a webhook event**: ``Flare``, from any tool that signs ``POST /v1/events``;
* **a command**: ``autopilot beacon dim <namespace>/<name>``.

The worker loads it through ``AUTOPILOT_OPERATOR_MODULES=tests.framework.beacon_operator``.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

from models.events import Event
from models.operator import OperatorInput, OperatorStatus, Target
from models.senses import Emit, KubeChange, PromQL, Reading, WatchKind, Webhook
from workflows.engine import ANY, Command, Ctx, Operator, OperatorWorkflow
from workflows.registry import register

#: The label that makes a ConfigMap a beacon.
BEACON_LABEL = "autopilot.dev/beacon"


class BeaconSpec(BaseModel):
    """Nothing to configure: the ConfigMap is the spec."""


class BeaconData(BaseModel):
    level: str = ""
    readings: int = 0
    last_rate: float | None = None
    last_reading_at: datetime | None = None
    flares: int = 0


class BeaconSet(Event):
    """The ConfigMap was created or changed."""

    level: str = ""


class BeaconRemoved(Event):
    """The ConfigMap was deleted."""


class RequestRate(Reading):
    """Requests per second of the Deployment named like the beacon (PromQL sense)."""


class Flare(Event):
    """Someone raised the alarm through the generic webhook."""

    reason: str = ""


def from_config_map(change: KubeChange) -> list[Emit]:
    """A beacon's ConfigMap changed: its level, or its end."""
    target = Target(namespace=change.namespace, name=change.name, kind="ConfigMap")
    if change.type == "deleted":
        return [Emit(target, BeaconRemoved())]
    data = change.object.get("data") or {}
    return [Emit(target, BeaconSet(level=str(data.get("level", ""))), start={})]


def set_level(ctx: Ctx[BeaconSpec, BeaconData, BeaconSet]) -> BeaconData:
    return ctx.data.model_copy(update={"level": ctx.event.level})


def record_rate(ctx: Ctx[BeaconSpec, BeaconData, RequestRate]) -> BeaconData:
    update = {
        "readings": ctx.data.readings + 1,
        "last_rate": ctx.event.value,
        "last_reading_at": ctx.event.at,
    }
    return ctx.data.model_copy(update=update)


def count_flare(ctx: Ctx[BeaconSpec, BeaconData, Flare]) -> BeaconData:
    return ctx.data.model_copy(update={"flares": ctx.data.flares + 1})


RATE_QUERY = (
    "sum by (destination_workload_namespace, destination_workload) (rate(istio_requests_total{"
    'reporter="destination",destination_workload_namespace=~"{{ namespace }}",'
    'destination_workload=~"{{ name }}"}[10s]))'
)

beacon: Operator[BeaconSpec, BeaconData] = Operator(
    "beacon",
    spec=BeaconSpec,
    data=BeaconData,
    initial="Watching",
    senses=[
        WatchKind(
            group="",
            version="v1",
            plural="configmaps",
            labels=f"{BEACON_LABEL}=true",
            map=from_config_map,
            sends=(BeaconSet, BeaconRemoved),
        ),
        PromQL("request-rate", RATE_QUERY, sends=RequestRate, interval=timedelta(seconds=2)),
        Webhook(sends=(Flare,)),
    ],
    details=lambda ctx: f"level {ctx.data.level!r}, {ctx.data.readings} readings",
    description="A test beacon: a ConfigMap's level, a request rate, flares and a dim command.",
)
beacon.state("Watching", settled=True, doc="watching the level and the traffic")
beacon.state("Flared", settled=True, doc="a flare was raised; waits for `dim`")
beacon.state("Gone", final=True, doc="its ConfigMap was deleted")

beacon.on(ANY, BeaconSet, go=None, do=set_level, doc="remember the level")
beacon.on(ANY, RequestRate, go=None, do=record_rate, doc="remember the rate")
beacon.on(["Watching", "Flared"], Flare, go="Flared", do=count_flare)
beacon.on("Flared", Command("dim", doc="Dim a flared beacon: back to watching."), go="Watching")
beacon.on(ANY, BeaconRemoved, go="Gone")
beacon.check()


@register
@workflow.defn(name="beacon")
class BeaconWorkflow(OperatorWorkflow):
    operator = beacon

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        return await self.run_operator(input)
