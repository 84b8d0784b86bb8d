"""The canary operator's contract: its spec, its memory and the events it reacts to.

Why Flagger's field names: most users of progressive delivery on Istio come from Flagger.
The ``spec`` of a Flagger ``Canary`` (``flagger.app/v1beta1``) loads here unchanged once its
``apiVersion`` and ``kind`` are ours; its strategies (canary, A/B ``match``, blue/green with
``mirror``, ``sessionAffinity``) keep Flagger's meaning (their match models are in
:mod:`models.traffic`), and fields that would silently change behaviour if ignored are
refused with a message naming the field instead. What we add (per-metric ``noData``
policy, manual ``gates``) is marked "Autopilot" in the field descriptions, which also feed
the ``Canary`` CRD schema (:func:`canary_crd_schema`).

Durations are written the way Flagger users write them (``"1m"``, ``"30s"``) and kept as
:class:`~datetime.timedelta` inside. Everything here is pure data: the workflow validates the
spec with these models, the activities receive them, the CLI and watchers load them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from models.alerts import CanaryAlert
from models.approvals import ApproverRules
from models.durations import DURATION_PATTERN as DURATION_PATTERN
from models.durations import Duration as Duration
from models.durations import format_duration as format_duration
from models.durations import parse_duration as parse_duration
from models.errors import path_problems
from models.events import Event
from models.judge import BUILTIN_DIRECTIONS, Direction, JudgeSpec, JudgeVerdict, MetricJudgement
from models.judge import Verdict as JudgeOutcome
from models.limits import (
    LABEL_KEY,
    LABEL_VALUE,
    MAX_ENTRIES,
    MAX_LABEL,
    MAX_LABEL_KEY,
    MAX_MANIFEST_BYTES,
    MAX_NAME,
    MAX_SAMPLE_COUNT,
    MAX_SPEC_JSON_BYTES,
    MAX_TEXT,
    MAX_URL,
    check_json_size,
    format_size,
)
from models.operator import StepInput
from models.promql import BUILTIN_QUERIES, TEMPLATE_VARIABLES, VARIABLE
from models.traffic import Matches, SessionAffinity, Strategy

#: A Flagger field we refuse loudly rather than ignore (ignoring it would change behaviour).
Unsupported = Annotated[SkipJsonSchema[Any], Field(default=None, exclude=True)]

#: Bounded strings and maps (see models/limits.py for why each bound is what it is).
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
#: An Istio gateway: ``<namespace>/<name>`` or a host name.
Gateway = Annotated[str, Field(min_length=1, max_length=MAX_LABEL + 1 + MAX_NAME)]
Variables = Annotated[dict[Name, Text], Field(max_length=MAX_ENTRIES)]
#: The routing API (Flagger's names): Istio VirtualServices or Gateway API HTTPRoutes.
Provider = Literal["istio", "gatewayapi:v1", "gatewayapi:v1beta1"]


def _refuse(value: Any, info: ValidationInfo, reasons: Mapping[str, str]) -> None:
    """Raise for a set unsupported field, saying what to use instead."""
    if value not in (None, False, [], {}, ""):
        name = to_camel(info.field_name or "")
        raise ValueError(f"{name} is not supported by Autopilot; {reasons[info.field_name or '']}")


def _blame(field: str, message: str) -> PydanticCustomError:
    """A model-wide error that names the field to blame (see :func:`models.errors.error_field`)."""
    return PydanticCustomError("strategy", message, {"field": field})


class _Spec(BaseModel):
    """Base of every spec part: camelCase names (Flagger's), unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


# =============================================================================
# The spec
# =============================================================================


class TargetRef(_Spec):
    """The workload to roll out: the user's Deployment, which runs the canary."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


#: At most this many ``service.gatewayRefs``: the HTTPRoute's own limit on ``parentRefs``.
MAX_GATEWAY_REFS = 32
#: At most this many ``service.hosts`` with the Gateway API: the HTTPRoute's limit on
#: ``hostnames``.
MAX_HTTPROUTE_HOSTNAMES = 16


class GatewayRef(_Spec):
    """A Gateway API ParentReference, what the HTTPRoute attaches to (Flagger's gatewayRefs).

    A Gateway by default; a Service (``group: ""``, ``kind: Service``) for mesh routing.
    """

    name: str = Field(min_length=1, max_length=MAX_NAME)
    namespace: str | None = Field(
        default=None,
        max_length=MAX_LABEL,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="defaults to the Canary's namespace",
    )
    group: str = Field(default="gateway.networking.k8s.io", max_length=MAX_NAME)
    kind: str = Field(default="Gateway", min_length=1, max_length=MAX_LABEL)
    section_name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME, description="a listener of the Gateway"
    )
    port: int | None = Field(default=None, ge=1, le=65535)


#: Why a field of another Flagger provider is refused: it means nothing with Istio or the
#: Gateway API, and a manifest written for that provider should not run here by mistake.
_OTHER_PROVIDER = (
    "it is a field of Flagger's {provider} provider; Autopilot routes with istio or "
    "gatewayapi:v1, where it has no meaning, so remove it"
)

#: Metadata keys Autopilot writes itself: a ``service.apex/primary/canary`` entry may not set
#: them, or a user could hand a Service to another operator or hide it from us.
_OUR_METADATA_PREFIX = "autopilot.dev/"
_OUR_LABELS = frozenset({"app.kubernetes.io/managed-by"})


class CustomMetadata(_Spec):
    """Labels and annotations for one generated Service (Flagger's ``CustomMetadata``).

    Checked against Kubernetes' formats here, so a bad key is refused when the spec loads,
    naming the field, not by the API server at initialisation.
    """

    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    annotations: dict[str, Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        default_factory=dict, max_length=MAX_ENTRIES
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            _check_metadata_key(key)
            if key in _OUR_LABELS:
                raise ValueError(f"{key}: Autopilot sets this label itself")
            if not LABEL_VALUE.match(label):
                raise ValueError(
                    f"{key}={label!r}: a label value is at most {MAX_LABEL} letters, digits, "
                    "'-', '_' or '.', starting and ending with a letter or digit"
                )
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _check_metadata_key(key)
        return value


def _check_metadata_key(key: str) -> None:
    """Refuse a key Kubernetes would refuse, or one of Autopilot's own marks."""
    if len(key) > MAX_LABEL_KEY or not LABEL_KEY.match(key):
        raise ValueError(
            f"{key!r} is not a Kubernetes label or annotation key ([prefix/]name, "
            f"a name of at most {MAX_LABEL} characters)"
        )
    if key.startswith(_OUR_METADATA_PREFIX):
        raise ValueError(f"{key}: {_OUR_METADATA_PREFIX} keys are Autopilot's own marks")


class CanaryService(_Spec):
    """How the workload is exposed: the Services and VirtualService Autopilot generates.

    ``trafficPolicy`` goes to both DestinationRules; ``retries``, ``timeout``, ``headers``,
    ``corsPolicy`` and ``rewrite`` go to the VirtualService route as Istio defines them.
    """

    name: str | None = Field(
        default=None,
        description="apex Service and VirtualService name; defaults to targetRef.name",
        max_length=MAX_LABEL,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    )
    port: int = Field(ge=1, le=65535, description="port the Services expose")
    target_port: int | Annotated[str, Field(max_length=MAX_LABEL)] | None = Field(
        default=None, description="container port; defaults to port"
    )
    port_name: str = Field(
        default="http", max_length=MAX_LABEL, description="name of the Service port"
    )
    port_discovery: bool = Field(default=False, description="accepted for Flagger; ignored")
    app_protocol: str | None = Field(default=None, max_length=MAX_NAME)
    hosts: list[Name] = Field(
        default_factory=list, max_length=MAX_ENTRIES, description="extra VirtualService hosts"
    )
    gateways: list[Gateway] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Istio gateways; empty means the mesh only",
    )
    gateway_refs: list[GatewayRef] = Field(
        default_factory=list,
        max_length=MAX_GATEWAY_REFS,
        description="Gateway API: the HTTPRoute's parentRefs (provider gatewayapi:v1)",
    )
    traffic_policy: dict[str, Any] | None = None
    retries: dict[str, Any] | None = None
    timeout: str | None = Field(default=None, max_length=64)
    headers: dict[str, Any] | None = None
    cors_policy: dict[str, Any] | None = None
    rewrite: dict[str, Any] | None = None
    match: Matches = Field(
        default_factory=list,
        description="Istio HTTP match conditions of every route (e.g. a URI prefix); "
        "requests matching none are not routed",
    )
    apex: CustomMetadata | None = Field(
        default=None, description="labels and annotations of the apex Service <apex>"
    )
    primary: CustomMetadata | None = Field(
        default=None, description="labels and annotations of the Service <apex>-primary"
    )
    canary: CustomMetadata | None = Field(
        default=None, description="labels and annotations of the Service <apex>-canary"
    )
    delegation: bool = Field(
        default=False,
        description="write the VirtualService without hosts and gateways, as the delegate of "
        "a root VirtualService (Istio VirtualService delegation)",
    )

    @model_validator(mode="after")
    def _delegate_has_no_hosts(self) -> CanaryService:
        """A delegate VirtualService has neither hosts nor gateways: the root names them."""
        if self.delegation:
            for name in ("hosts", "gateways"):
                if getattr(self, name):
                    raise _blame(
                        name,
                        f"{name} does not combine with delegation: true; a delegate "
                        f"VirtualService has no {name}, list them in the root VirtualService",
                    )
        return self


class ThresholdRange(_Spec):
    """Bounds a metric value must stay within (inclusive); at least one is required."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> ThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class NoDataPolicy(StrEnum):
    """What a metric check does when Prometheus has no value (or is unreachable).

    Autopilot's addition: Flagger always counts no data as a failed check.
    """

    FAIL = "fail"  #: no data is a failed check, as in Flagger
    HOLD = "hold"  #: keep the weight and check again, up to analysis.noDataHoldIntervals
    PASS = "pass"  #: no data passes (for metrics that are legitimately empty)


#: Built-in metric names (Flagger's, for Istio).
BUILTIN_METRICS = tuple(BUILTIN_QUERIES)


class TemplateRef(_Spec):
    """A template of ``analysis.metricTemplates`` by that name, else a ``MetricTemplate``."""

    name: Name
    namespace: str | None = Field(default=None, max_length=MAX_LABEL)


class MetricTemplate(_Spec):
    """A reusable PromQL query (Autopilot: declared inline, not as a separate resource)."""

    query: str = Field(min_length=1, max_length=MAX_TEXT)
    address: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description="Prometheus URL; defaults to the worker's PROMETHEUS_URL",
    )


#: Requests a metric's window must hold before its value counts. Why 20: a canary failing
#: half its requests shows 100 % success in one request half the time, in 20 requests about
#: once in a million. At Flagger's 1-minute window a canary at 10 % gets 20 requests from a
#: service answering 3.4 a second: only a quiet service needs a longer window or a lower count.
DEFAULT_MIN_SAMPLE_COUNT = 20


class CanaryMetric(_Spec):
    """One metric check run every analysis interval."""

    name: Name
    threshold_range: ThresholdRange | None = None
    threshold: float | None = Field(
        default=None, description="deprecated Flagger form: the same as thresholdRange.min/max"
    )
    interval: Duration = Field(
        default=timedelta(minutes=1), description="range of the PromQL rate window"
    )
    query: str | None = Field(
        default=None, max_length=MAX_TEXT, description="inline PromQL template"
    )
    template_ref: TemplateRef | None = None
    template_variables: Variables = Field(default_factory=dict)
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.HOLD,
        description="Autopilot: fail | hold | pass when there is no value (default hold)",
    )
    min_sample_count: int = Field(
        default=DEFAULT_MIN_SAMPLE_COUNT,
        ge=0,
        le=MAX_SAMPLE_COUNT,
        description="Autopilot: requests the target must have answered in the metric's "
        f"interval for its value to count; fewer is no data (default {DEFAULT_MIN_SAMPLE_COUNT}"
        "; 0 does not count them)",
    )
    judge: MetricJudgement = Field(
        default_factory=MetricJudgement,
        description="Autopilot: how analysis.judge compares this metric with the primary's",
    )
    dry_run: bool = Field(
        default=False,
        description="Autopilot: measured and shown (threshold and judge), never deciding",
    )

    @property
    def direction(self) -> Direction:
        """Which change the judge counts against the canary (built-in metrics know theirs)."""
        return self.judge.direction or BUILTIN_DIRECTIONS.get(self.name, Direction.EITHER)

    @property
    def builtin(self) -> bool:
        """Whether this is one of Flagger's built-in Istio metrics."""
        return self.query is None and self.template_ref is None and self.name in BUILTIN_METRICS

    @model_validator(mode="after")
    def _is_complete(self) -> CanaryMetric:
        if self.query is not None and self.template_ref is not None:
            raise ValueError("set query or templateRef, not both")
        if self.query is None and self.template_ref is None and self.name not in BUILTIN_METRICS:
            raise ValueError(
                f"{self.name!r} is not a built-in metric ({', '.join(BUILTIN_METRICS)}); "
                "give it a query or a templateRef"
            )
        if self.threshold_range is None and self.threshold is None:
            raise ValueError("set thresholdRange (min and/or max)")
        if self.query is not None:
            check_template_variables(self.query, self.template_variables)
        return self

    def bounds(self) -> ThresholdRange:
        """The effective range; Flagger's old ``threshold`` means min for the success rate."""
        if self.threshold_range is not None:
            return self.threshold_range
        assert self.threshold is not None
        if self.name == "request-duration":
            return ThresholdRange(max=self.threshold)
        return ThresholdRange(min=self.threshold)


def check_template_variables(query: str, variables: Mapping[str, str]) -> None:
    """Refuse a query that uses a ``{{ variable }}`` no one will fill in."""
    for name in VARIABLE.findall(query):
        if name in TEMPLATE_VARIABLES:
            continue
        if name.startswith("variables.") and name.removeprefix("variables.") in variables:
            continue
        known = ", ".join([*TEMPLATE_VARIABLES, *(f"variables.{v}" for v in variables)])
        raise ValueError(f"query uses {{{{ {name} }}}}, which is not one of: {known}")


class HookType(StrEnum):
    """Flagger's webhook types, with the same meaning (see docs/operators/canary.md)."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class CanaryWebhook(_Spec):
    """An HTTP hook called with Flagger's payload; 200-202 means yes."""

    name: Name
    type: HookType = HookType.ROLLOUT
    url: str = Field(
        max_length=MAX_URL, pattern=r"^https?://", description="http:// or https:// URL"
    )
    timeout: Duration = Field(default=timedelta(seconds=10))
    metadata: Variables = Field(default_factory=dict)
    retries: int = Field(default=0, ge=0, le=10, description="extra attempts on error or 5xx")
    disable_tls: bool = Field(default=False, alias="disableTLS")
    mute_alert: bool = Field(default=False, description="accepted for Flagger; ignored")


class Gates(_Spec):
    """Autopilot: manual approvals given with ``autopilot approve`` (kept in history)."""

    before_start: bool = Field(default=False, description="approve before any traffic moves")
    before_each_step: bool = Field(default=False, description="approve every weight increase")
    before_promotion: bool = Field(default=False, description="approve the promotion")


#: Replicas an HPA bound may name (Kubernetes takes an int32; no workload comes near this).
MAX_REPLICAS = 100_000

#: Blue/green analyses of one revision (the weight plan holds one step for each).
MAX_ITERATIONS = 1000


class CanaryAnalysis(_Spec):
    """How the rollout advances and what it checks at every step."""

    interval: Duration = Field(default=timedelta(minutes=1), description="time between steps")
    threshold: int = Field(default=1, ge=1, description="failed checks before rollback")
    max_weight: int | None = Field(default=None, ge=1, le=100, description="default 100")
    step_weight: int | None = Field(default=None, ge=1, le=100)
    step_weights: list[int] | None = Field(default=None, min_length=1, max_length=100)
    step_weight_promotion: int | None = Field(default=None, ge=1, le=100)
    iterations: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ITERATIONS,
        description="blue/green and A/B testing: analyses to run before promotion",
    )
    metrics: list[CanaryMetric] = Field(default_factory=list, max_length=MAX_ENTRIES)
    webhooks: list[CanaryWebhook] = Field(default_factory=list, max_length=MAX_ENTRIES)
    metric_templates: dict[Name, MetricTemplate] = Field(
        default_factory=dict,
        max_length=MAX_ENTRIES,
        description="Autopilot: templates for metrics[].templateRef",
    )
    no_data_hold_intervals: int = Field(
        default=3,
        ge=0,
        description="Autopilot: consecutive no-data intervals a 'hold' metric may hold",
    )
    gates: Gates = Field(default_factory=Gates)
    judge: JudgeSpec | None = Field(
        default=None,
        description="Autopilot: compare every metric of the canary with the primary's "
        "(Mann-Whitney U); unset: thresholds only",
    )
    primary_ready_threshold: int | None = Field(default=None, description="accepted; ignored")
    canary_ready_threshold: int | None = Field(default=None, description="accepted; ignored")
    match: Matches = Field(
        default_factory=list,
        description="A/B testing: requests matching any of these Istio HTTP matches go to "
        "the canary for `iterations` analyses; the others stay on the primary",
    )
    mirror: bool = Field(
        default=False,
        description="copy live requests to the canary (responses discarded): for all "
        "`iterations` of a blue/green, or one analysis before the first stepWeight",
    )
    mirror_weight: int | None = Field(
        default=None, ge=0, le=100, description="percent of requests mirrored (default 100)"
    )
    session_affinity: SessionAffinity | None = Field(
        default=None,
        description="with stepWeight(s): users the weights send to the canary get a cookie "
        "and stay on the canary for the rest of the rollout",
    )
    alerts: list[CanaryAlert] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="alerts to chat providers (AlertProvider resources), by severity",
    )

    #: Every Flagger field of the analysis is implemented now; none is refused.
    _UNSUPPORTED: ClassVar[dict[str, str]] = {}

    @field_validator("alerts")
    @classmethod
    def _alert_names_unique(cls, value: list[CanaryAlert]) -> list[CanaryAlert]:
        counts = Counter(alert.name for alert in value)
        repeated = sorted(name for name, count in counts.items() if count > 1)
        if repeated:
            raise ValueError(f"alert names must be unique; repeated: {', '.join(repeated)}")
        return value

    @field_validator("interval")
    @classmethod
    def _interval_at_least_a_second(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value

    @field_validator("step_weights")
    @classmethod
    def _ascending(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        for index, weight in enumerate(value):
            if not 1 <= weight <= 100:
                raise ValueError(f"step {index} is {weight}; every step must be 1..100")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"must be strictly ascending, got {value}")
        return value

    @model_validator(mode="after")
    def _has_a_plan(self) -> CanaryAnalysis:
        if self.step_weight is None and self.step_weights is None and self.iterations is None:
            raise ValueError("set stepWeight, stepWeights or iterations")
        top = self.max_weight
        if self.step_weights and top is not None and self.step_weights[-1] > top:
            raise ValueError(f"stepWeights ends at {self.step_weights[-1]}, above maxWeight {top}")
        if self.step_weight is not None and self.step_weight > (self.max_weight or 100):
            raise ValueError(
                f"stepWeight {self.step_weight} is above maxWeight {self.max_weight or 100}"
            )
        counts = Counter(m.name for m in self.metrics)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _strategy_is_whole(self) -> CanaryAnalysis:
        """Flagger's strategies, each with what it needs (see ``strategy``)."""
        if self.match and self.iterations is None:
            raise _blame("match", "A/B testing (match) needs iterations: the analyses to run")
        if self.match and self.mirror:
            raise _blame("mirror", "mirror does not combine with match: A/B sends real requests")
        if self.mirror_weight is not None and not self.mirror:
            raise _blame("mirrorWeight", "mirrorWeight needs mirror: true")
        if self.session_affinity is not None and self.strategy != Strategy.CANARY:
            raise _blame(
                "sessionAffinity",
                "sessionAffinity needs stepWeight or stepWeights (and no match): it keeps "
                "the users the weights sent to the canary",
            )
        return self

    # -- the plan -----------------------------------------------------------

    @property
    def strategy(self) -> Strategy:
        """Flagger's rule: ``match`` is A/B, step weights a canary, ``iterations`` alone
        blue/green (``stepWeight`` and ``maxWeight`` are ignored with ``match``)."""
        if self.match:
            return Strategy.AB_TESTING
        if self.step_weight is None and self.step_weights is None:
            return Strategy.BLUE_GREEN
        return Strategy.CANARY

    @property
    def blue_green(self) -> bool:
        """No weights given, only iterations: the canary gets no live traffic."""
        return self.strategy == Strategy.BLUE_GREEN

    def weight_plan(self) -> list[int]:
        """The canary weights to go through, in order, before promotion.

        ``stepWeights`` as given; otherwise ``stepWeight``, ``2 * stepWeight``, ... up to and
        including ``maxWeight`` (the last step is capped, as in Flagger), after one step at
        0 with ``mirror`` (Flagger's mirror pre-stage); for blue/green, ``iterations`` steps
        of weight 0; for A/B, ``iterations`` steps of 100: the weight of the matching
        requests (the others stay on the primary).
        """
        if self.strategy == Strategy.AB_TESTING:
            return [100] * (self.iterations or 1)
        if self.strategy == Strategy.BLUE_GREEN:
            return [0] * (self.iterations or 1)
        if self.step_weights:
            plan = list(self.step_weights)
        else:
            assert self.step_weight is not None
            top = self.max_weight or 100
            plan = list(range(self.step_weight, top + 1, self.step_weight))
            if not plan or plan[-1] != top:
                plan.append(top)
        return [0, *plan] if self.mirror else plan

    def hooks(self, kind: HookType) -> list[CanaryWebhook]:
        """The webhooks of one type, in declaration order."""
        return [hook for hook in self.webhooks if hook.type == kind]


class ScalerReplicas(_Spec):
    """Flagger's ``primaryScalerReplicas``: bounds for the primary's HPA instead of the user's."""

    min_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)

    @model_validator(mode="after")
    def _ordered(self) -> ScalerReplicas:
        low, high = self.min_replicas, self.max_replicas
        if low is not None and high is not None and low > high:
            raise ValueError(f"minReplicas ({low}) is greater than maxReplicas ({high})")
        return self


class AutoscalerRef(_Spec):
    """The user's HorizontalPodAutoscaler of the target; the primary gets ``<name>-primary``.

    As in Flagger: the primary's HPA is derived from this one (same metrics and behavior,
    ``scaleTargetRef`` rewritten to ``<target>-primary``, bounds from
    ``primaryScalerReplicas`` where given), created when the canary is initialised and
    brought up to date at every promotion. The user's HPA keeps scaling the canary.
    """

    api_version: Literal["autoscaling/v2"] = Field(
        default="autoscaling/v2", description="autoscaling/v2 (v2beta2 left Kubernetes in 1.26)"
    )
    kind: Literal["HorizontalPodAutoscaler"] = Field(
        default="HorizontalPodAutoscaler", description="KEDA ScaledObjects are not supported"
    )
    name: str = Field(
        min_length=1,
        max_length=MAX_NAME - len("-primary"),
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="the user's HPA in the canary's namespace",
    )
    primary_scaler_replicas: ScalerReplicas | None = Field(
        default=None, description="minReplicas/maxReplicas of the primary's HPA instead"
    )
    primary_scaler_queries: Unsupported

    _UNSUPPORTED: ClassVar[dict[str, str]] = {
        "primary_scaler_queries": "it applies to KEDA ScaledObjects, which are not supported",
    }

    @field_validator("primary_scaler_queries")
    @classmethod
    def _unsupported(cls, value: Any, info: ValidationInfo) -> None:
        _refuse(value, info, cls._UNSUPPORTED)


class CanarySpec(_Spec):
    """The ``spec`` of an Autopilot ``Canary``: Flagger's Istio fields plus our additions."""

    target_ref: TargetRef
    service: CanaryService
    analysis: CanaryAnalysis
    progress_deadline_seconds: int = Field(
        default=600, ge=1, description="how long a workload may take to become ready"
    )
    skip_analysis: bool = Field(default=False, description="promote without analysis")
    provider: Provider = Field(
        default="istio",
        description="istio (VirtualService) or gatewayapi:v1 (HTTPRoute; v1beta1 accepted)",
    )
    revert_on_deletion: bool = Field(default=False, description="accepted; ignored")
    autoscaler_ref: AutoscalerRef | None = Field(
        default=None, description="the target's HorizontalPodAutoscaler, mirrored for the primary"
    )
    suspend: bool = Field(
        default=False,
        description="Flagger's: true pauses a running rollout (timers freeze, traffic stays) "
        "and starts no new one; false resumes",
    )
    approvers: ApproverRules | None = Field(
        default=None,
        description="Autopilot: who (users, groups, as the API server authenticates them) may "
        "give which commands to this canary, checked by its workflow; unset: RBAC on Approvals "
        "alone decides",
    )
    ingress_ref: Unsupported
    route_ref: Unsupported
    upstream_ref: Unsupported
    canary_analysis: Unsupported

    _UNSUPPORTED: ClassVar[dict[str, str]] = {
        "ingress_ref": _OTHER_PROVIDER.format(provider="NGINX and Skipper ingress"),
        "route_ref": _OTHER_PROVIDER.format(provider="APISIX"),
        "upstream_ref": _OTHER_PROVIDER.format(provider="Gloo"),
        "canary_analysis": "it was renamed analysis in flagger.app/v1beta1",
    }

    @field_validator("ingress_ref", "route_ref", "upstream_ref", "canary_analysis")
    @classmethod
    def _unsupported(cls, value: Any, info: ValidationInfo) -> None:
        _refuse(value, info, cls._UNSUPPORTED)

    @model_validator(mode="after")
    def _fits_the_provider(self) -> CanarySpec:
        problems = _provider_problems(self)
        if problems:  # a model validator fails once: the first problem names its field
            field, problem = problems[0]
            raise PydanticCustomError("provider", "{problem}", {"field": field, "problem": problem})
        return self

    @model_validator(mode="after")
    def _fits_in_temporal(self) -> CanarySpec:
        check_json_size(self, MAX_SPEC_JSON_BYTES, "a canary spec")
        return self

    @property
    def progress_deadline(self) -> timedelta:
        """``progressDeadlineSeconds`` as a duration."""
        return timedelta(seconds=self.progress_deadline_seconds)

    @property
    def gateway_api(self) -> bool:
        """Whether the canary is routed with a Gateway API HTTPRoute (not a VirtualService)."""
        return self.provider.startswith("gatewayapi:")

    @property
    def apex(self) -> str:
        """The name of the apex Service and of the VirtualService."""
        return self.service.name or self.target_ref.name


#: Istio-only fields an HTTPRoute has no place for, and what to do instead. Read with
#: ``getattr`` so a strategy field that is refused for every provider (or not declared) is
#: skipped here.
_NOT_WITH_GATEWAY_API: dict[tuple[str, str], str] = {
    ("service", "gateways"): "list the Gateways in service.gatewayRefs",
    ("service", "traffic_policy"): "it configures Istio DestinationRules",
    ("service", "retries"): "it is an Istio route option",
    ("service", "cors_policy"): "it is an Istio route option",
    ("service", "rewrite"): "it is an Istio route option",
    ("service", "match"): "it holds Istio matches",
    ("service", "delegation"): "it is Istio VirtualService delegation",
    ("analysis", "match"): "A/B matches are not implemented for HTTPRoutes",
    ("analysis", "mirror"): "mirroring is not implemented for HTTPRoutes",
    ("analysis", "mirror_weight"): "mirroring is not implemented for HTTPRoutes",
    ("analysis", "session_affinity"): "session affinity is not implemented for HTTPRoutes",
}

#: A Gateway API ``Duration`` (GEP-2257), which ``rules[].timeouts.request`` must be.
_GATEWAY_API_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
#: A Gateway API ``HTTPHeaderName``; a header filter holds at most 16 of each operation.
_GATEWAY_API_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$")
_MAX_HEADER_CHANGES = 16


def _header_problem(headers: Mapping[str, Any]) -> str | None:
    """Why Istio ``headers`` cannot become HTTPRoute header filters, or None when they can.

    The shape is Istio's (``{request|response: {set: {name: value}, add: {...}, remove:
    [name]}}``); the limits are the Gateway API's, so the API server never refuses the route.
    """
    for side, changes in headers.items():
        if side not in ("request", "response") or not isinstance(changes, Mapping):
            return f"{side!r}: expected request or response, each a mapping of set, add, remove"
        for operation, entries in changes.items():
            if operation not in ("set", "add", "remove"):
                return f"{side}.{operation}: expected set, add or remove"
            names: list[Any]
            values: list[Any]
            if operation == "remove":
                if not isinstance(entries, list):
                    return f"{side}.remove: expected a list of names"
                names, values = entries, []
            else:
                if not isinstance(entries, Mapping):
                    return f"{side}.{operation}: expected a mapping name: value"
                names, values = list(entries), list(entries.values())
            if len(names) > _MAX_HEADER_CHANGES:
                return f"{side}.{operation}: an HTTPRoute filter takes at most 16, got {len(names)}"
            for name in names:
                if not isinstance(name, str) or not _GATEWAY_API_HEADER.match(name):
                    return f"{side}.{operation}: {name!r} is not a header name"
            if any(not isinstance(value, str) or len(value) > 4096 for value in values):
                return f"{side}.{operation}: values must be strings of at most 4096 characters"
    return None


def _provider_problems(spec: CanarySpec) -> list[tuple[str, str]]:
    """``(field path, problem)`` for each field the chosen provider cannot honour.

    Why refuse: a field silently dropped would run a different rollout than the one written.
    """
    service = spec.service
    if not spec.gateway_api:
        if service.gateway_refs:
            return [("service.gatewayRefs", f"needs provider gatewayapi:v1 (not {spec.provider})")]
        return []
    problems = []
    for (part, name), remedy in _NOT_WITH_GATEWAY_API.items():
        if getattr(getattr(spec, part), name, None) not in (None, False, [], {}, ""):
            where = f"{part}.{to_camel(name)}"
            problems.append((where, f"not supported with provider {spec.provider}; {remedy}"))
    if not service.gateway_refs:
        problems.append(
            ("service.gatewayRefs", f"at least one is required with provider {spec.provider}")
        )
    if len(service.hosts) > MAX_HTTPROUTE_HOSTNAMES:
        problems.append(
            (
                "service.hosts",
                f"an HTTPRoute takes at most {MAX_HTTPROUTE_HOSTNAMES} hostnames, "
                f"got {len(service.hosts)}",
            )
        )
    header_problem = _header_problem(service.headers or {})
    if header_problem:
        problems.append(("service.headers", header_problem))
    if service.timeout is not None and not _GATEWAY_API_DURATION.match(service.timeout):
        problems.append(
            (
                "service.timeout",
                f"{service.timeout!r} is not a Gateway API duration (like 30s, 1m or 500ms)",
            )
        )
    return problems


# =============================================================================
# Loading and schema
# =============================================================================

#: API group/version and kind of our ``Canary`` custom resource.
CANARY_API_VERSION = "autopilot.dev/v1alpha1"
CANARY_KIND = "Canary"
_ACCEPTED_API_VERSIONS = (CANARY_API_VERSION, "flagger.app/v1beta1")


class CanarySpecError(ValueError):
    """A canary spec that does not load; one ``path: problem`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid canary spec:\n" + "\n".join(f"  {p}" for p in problems))


def parse_manifest(text: str) -> Any:
    """Parse a manifest's YAML (or JSON) text once, refusing an oversize one unparsed.

    Why the bound comes first: parsing is the slow part (about a second per MiB of YAML),
    so a file far too large is refused in no time, without being parsed.

    Raises:
        CanarySpecError: the text is over :data:`MAX_MANIFEST_BYTES` or not valid YAML.
    """
    size = len(text.encode())
    if size > MAX_MANIFEST_BYTES:
        raise CanarySpecError([oversize_manifest(size)])
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        raise CanarySpecError([f"(document): not valid YAML: {error}"]) from error
    except RecursionError:
        raise CanarySpecError(["(document): nested too deeply"]) from None


def oversize_manifest(size: int | None) -> str:
    """The problem line for a manifest of ``size`` bytes (``None``: unknown), over the limit."""
    limit = format_size(MAX_MANIFEST_BYTES)
    found = format_size(size) if size is not None else f"more than {limit}"
    return f"(document): {found}; a canary manifest may be at most {limit}"


#: The C loader when PyYAML has it: several times faster, and just as safe.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_canary_spec(source: str | Mapping[str, Any]) -> CanarySpec:
    """Load a spec from YAML or JSON text, a dict, or a whole ``Canary`` manifest.

    A manifest (a mapping with ``kind`` and ``spec``) must be ``kind: Canary`` of
    ``autopilot.dev/v1alpha1`` (``flagger.app/v1beta1`` is accepted too, to ease migration).
    Text is parsed once (:func:`parse_manifest`) and checking is linear in its size.

    Raises:
        CanarySpecError: every problem, each naming its field path (``spec.analysis.stepWeight``).
    """
    data: Any = parse_manifest(source) if isinstance(source, str) else source
    if not isinstance(data, Mapping):
        raise CanarySpecError(["(document): expected a mapping with the canary spec"])
    prefix = ""
    if "spec" in data and "kind" in data:
        if data.get("kind") != CANARY_KIND or data.get("apiVersion") not in _ACCEPTED_API_VERSIONS:
            raise CanarySpecError(
                [
                    f"kind: expected {CANARY_KIND} of {CANARY_API_VERSION}, got "
                    f"{data.get('kind')} of {data.get('apiVersion')}"
                ]
            )
        data, prefix = data["spec"], "spec"
    try:
        return CanarySpec.model_validate(data)
    except ValidationError as error:
        raise CanarySpecError(spec_problems(error, prefix)) from error


def spec_problems(error: ValidationError, prefix: str = "") -> list[str]:
    """``spec.analysis.metrics[0].thresholdRange: set min, max or both`` lines."""
    return path_problems(error, prefix)


def spec_differences(running: Mapping[str, Any], wanted: CanarySpec) -> list[str]:
    """What changes from the ``running`` spec (as ``status`` returns it) to ``wanted``.

    Both sides are compared in the model's normal form (defaults filled in, durations
    written alike), so ``interval: 60s`` equals ``interval: 1m``. One line per changed
    field, in manifest terms: ``spec.analysis.threshold: 2 → 5``.
    """
    before: Any = running  # as it is, when this version refuses it
    with contextlib.suppress(ValidationError):
        before = CanarySpec.model_validate(running).model_dump(mode="json", by_alias=True)
    return _differences(before, wanted.model_dump(mode="json", by_alias=True), "spec")


def _differences(before: Any, after: Any, path: str) -> list[str]:
    if before == after:
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        keys = [*after, *(key for key in before if key not in after)]
        return [
            line
            for key in keys
            for line in _differences(before.get(key), after.get(key), f"{path}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list):
        lines = [
            line
            for index, (old, new) in enumerate(zip(before, after, strict=False))
            for line in _differences(old, new, f"{path}[{index}]")
        ]
        lines += [f"{path}[{i}]: added {_shown(after[i])}" for i in range(len(before), len(after))]
        lines += [f"{path}[{i}]: removed" for i in range(len(after), len(before))]
        return lines
    return [f"{path}: {_shown(before)} → {_shown(after)}"]


def _shown(value: Any, width: int = 60) -> str:
    """A value as JSON, shortened for a one-line difference."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


# =============================================================================
# Events (what workers return, what watchers send, what the machine reacts to)
# =============================================================================


class CanaryEvent(Event):
    """Base of canary events; the type name in an EventEnvelope is the class name."""


class NewRevision(CanaryEvent):
    """A watcher saw a new pod template on the target Deployment."""

    revision: str | None = Field(default=None, description="template hash, if known")
    generation: int | None = None


class MetricSample(CanaryEvent):
    """A watcher's sample of one metric of this canary (the Prometheus watcher sends these).

    Between analyses, a sample outside the metric's range that would make the
    ``threshold``-th failed check rolls back at once, instead of at the next interval.
    Samples older than the current weight are ignored; no-data samples are ignored too
    (no data is judged once per interval, by its policy).
    """

    name: str = Field(description="the metric's name in analysis.metrics")
    value: float | None = None
    at: datetime = Field(description="when Prometheus evaluated the query")


class TargetDeleted(CanaryEvent):
    """A watcher saw the target Deployment (or its Canary) deleted."""

    reason: str = "deleted"


class Initialized(CanaryEvent):
    """The workload, Services and routes exist; says what there is to roll out."""

    revision: str = Field(description="hash of the target's pod template")
    stable_revision: str | None = Field(description="revision the -primary runs")
    needs_rollout: bool
    rejected: bool = Field(default=False, description="this revision failed or was aborted")
    rejected_reason: str | None = None
    bootstrapped: bool = Field(default=False, description="the -primary was just created")
    canary_replicas: int = 1


class HookResult(BaseModel):
    """One webhook call."""

    name: str
    type: HookType
    ok: bool
    status: int | None = None
    message: str = ""


class HooksRan(CanaryEvent):
    """The webhooks of one type ran; ``ok`` when every one answered 200-202 (or none exist)."""

    type: HookType
    ok: bool
    results: list[HookResult] = Field(default_factory=list)
    rollback_requested: bool = Field(default=False, description="a rollback hook said yes")

    def failures(self) -> str:
        """Names and messages of the hooks that said no."""
        return "; ".join(f"{r.name}: {r.message}" for r in self.results if not r.ok)


class WeightApplied(CanaryEvent):
    """The live VirtualService now routes ``primary``/``canary`` percent."""

    primary: int
    canary: int
    previous_primary: int | None = None
    previous_canary: int | None = None
    resource_version: str | None = None
    conflicts: int = Field(default=0, description="409s retried while writing")
    held: bool = Field(default=False, description="not raised: the canary is not ready")
    message: str = ""


class MetricStatus(StrEnum):
    """Outcome of one metric check."""

    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no_data"


class MetricResult(BaseModel):
    """One metric: its value against its threshold."""

    name: str
    status: MetricStatus
    value: float | None = None
    min: float | None = None
    max: float | None = None
    no_data: NoDataPolicy = NoDataPolicy.HOLD
    query: str = ""
    message: str = ""
    samples: float | None = Field(
        default=None, description="requests in the window (None: not counted)"
    )
    min_samples: int = Field(default=0, description="the metric's minSampleCount")
    dry_run: bool = Field(default=False, description="shown, never deciding")

    def describe(self) -> str:
        """``request-success-rate 48.2 < min 99``-style text for humans."""
        if self.status == MetricStatus.NO_DATA:
            read = f"; it read {self.value:.4g}" if self.value is not None else ""
            return f"{self.name}: no data ({self.message or 'empty result'}{read})"
        if self.value is None:  # failed without a value: its template is missing, say
            return f"{self.name}: failed ({self.message or 'no value'})"
        bounds = " ".join(
            part
            for part in (
                f"min {self.min:g}" if self.min is not None else "",
                f"max {self.max:g}" if self.max is not None else "",
            )
            if part
        )
        dry = "; dry run" if self.dry_run else ""
        return f"{self.name} {self.value:.4g} ({self.status.value}; {bounds}{dry})"


class AnalysisOutcome(StrEnum):
    """What one analysis says, before the machine applies threshold and hold limits."""

    PASSED = "passed"
    FAILED = "failed"
    NO_DATA = "no_data"  #: only 'hold' metrics lacked data
    ROLLBACK = "rollback"  #: a rollback webhook asked for it


class AnalysisResult(CanaryEvent):
    """One analysis: every metric's value vs threshold and every rollout hook."""

    at: datetime
    metrics: list[MetricResult] = Field(default_factory=list)
    hooks: list[HookResult] = Field(default_factory=list)
    rollback_requested: bool = False
    judge: JudgeVerdict | None = Field(
        default=None, description="canary against primary (analysis.judge), when asked"
    )

    @property
    def outcome(self) -> AnalysisOutcome:
        """Combine metrics, judge and hooks: rollback > failed > no data > passed.

        A dry-run metric decides nothing. The judge's Fail is a failed check; its NoData and
        Marginal are not a pass: held like no data, and judged again next interval.
        """
        if self.rollback_requested:
            return AnalysisOutcome.ROLLBACK
        if any(not h.ok for h in self.hooks):
            return AnalysisOutcome.FAILED
        deciding = [m for m in self.metrics if not m.dry_run]
        if any(m.status == MetricStatus.FAIL for m in deciding):
            return AnalysisOutcome.FAILED
        verdict = self.judge.verdict if self.judge is not None else None
        if verdict == JudgeOutcome.FAIL:
            return AnalysisOutcome.FAILED
        missing = [m for m in deciding if m.status == MetricStatus.NO_DATA]
        if any(m.no_data == NoDataPolicy.FAIL for m in missing):
            return AnalysisOutcome.FAILED
        if any(m.no_data == NoDataPolicy.HOLD for m in missing):
            return AnalysisOutcome.NO_DATA
        if verdict in (JudgeOutcome.NO_DATA, JudgeOutcome.MARGINAL):
            return AnalysisOutcome.NO_DATA
        return AnalysisOutcome.PASSED

    def summary(self) -> str:
        """One line: every metric, the judge's verdict and every failing hook."""
        parts = [m.describe() for m in self.metrics]
        if self.judge is not None:
            parts.append(self.judge.summary())
        parts += [f"hook {h.name}: {h.message}" for h in self.hooks if not h.ok]
        if self.rollback_requested:
            parts.append("a rollback webhook asked to roll back")
        return "; ".join(parts) or "no metrics configured"


class Started(CanaryEvent):
    """The canary was scaled up; if it is ready, the pre-rollout hooks ran."""

    ready: bool
    message: str = ""
    hooks: HooksRan | None = None


class Promoted(CanaryEvent):
    """The -primary got the canary's template; ``ready`` once it has rolled out."""

    revision: str
    ready: bool
    message: str = ""


class RolledBack(CanaryEvent):
    """Traffic is back on the -primary (100/0) and the canary scaled to zero."""

    primary: int = 100
    canary: int = 0


class Finalised(CanaryEvent):
    """After promotion: 100/0 on the -primary and the canary scaled to zero."""


#: Events that watchers may signal in (the others are returned by workers).
WATCHER_EVENTS: tuple[type[CanaryEvent], ...] = (NewRevision, TargetDeleted, MetricSample)


# =============================================================================
# The machine's memory
# =============================================================================


class Approval(BaseModel):
    """A human approval of a gate (the command itself is also in history)."""

    gate: str
    by: str
    at: datetime
    reason: str | None = None


class CanaryData(BaseModel):
    """What the canary workflow remembers between events (shown in status)."""

    revision: str | None = Field(default=None, description="template hash being rolled out")
    stable_revision: str | None = Field(default=None, description="template hash on -primary")
    attempt: int = Field(default=0, description="0, then +1 for every retry")
    step: int = Field(default=0, description="index in the weight plan")
    canary_weight: int = Field(default=0, description="the weight the machine wants")
    applied_weights: list[int] = Field(
        default_factory=list, description="canary weights written to the VirtualService"
    )
    iterations: int = Field(default=0, description="analyses run for this revision")
    failed_checks: int = 0
    no_data_streak: int = Field(default=0, description="consecutive held no-data analyses")
    last_analysis: AnalysisResult | None = None
    weight_held: bool = Field(default=False, description="this step's weight is not applied yet")
    weight_since: datetime | None = Field(
        default=None, description="when the current weight reached the VirtualService"
    )
    gate_open: bool = Field(default=False, description="the pending gate was approved")
    hooks_confirmed: bool = Field(default=False, description="pending confirm-* hooks said yes")
    approvals: list[Approval] = Field(default_factory=list)
    message: str = Field(default="", description="the last decision, for humans")
    failure: str | None = Field(default=None, description="why the rollout failed")
    failed_metrics: list[MetricResult] = Field(default_factory=list)
    outcome: str | None = Field(default=None, description="promoted | rolled back | aborted")
    phase_started_at: datetime | None = Field(
        default=None, description="when the current wait for readiness began"
    )
    retry_of: str | None = Field(
        default=None, description="a rejected revision that `retry` asked to roll out again"
    )
    slots: list[str] = Field(
        default_factory=list, description="scopes of the concurrency cap granted a permit"
    )

    MAX_RECORDED: ClassVar[int] = 100


#: Flagger's phase for each of our states (webhook payloads and the Canary status use it).
FLAGGER_PHASES: dict[str, str] = {
    "Initializing": "Initializing",
    "Queued": "Waiting",
    "Waiting": "Waiting",
    "Starting": "Progressing",
    "Progressing": "Progressing",
    "Analysing": "Progressing",
    "AwaitingStep": "Waiting",
    "AwaitingPromotion": "WaitingPromotion",
    "Promoting": "Promoting",
    "Finalising": "Finalising",
    "Succeeded": "Succeeded",
    "RollingBack": "Failed",
    "Failed": "Failed",
    "Aborted": "Failed",
}


def flagger_phase(state: str) -> str:
    """The Flagger phase a state corresponds to (unknown states map to themselves)."""
    return FLAGGER_PHASES.get(state, state)


#: The one argument of every canary activity.
CanaryStep = StepInput[CanarySpec, CanaryData]
