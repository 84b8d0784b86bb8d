"""The canary's PromQL, once: built-in queries, template lookup, variables, rendering, values.

The canary worker (one query per rollout) and the Prometheus watcher (one grouped query for
all rollouts) both start from :meth:`MetricQuery.of`, so both ask Prometheus the same
question; ``tests/canary/test_promql_identity.py`` holds them to it. The spec model checks
templates against :data:`TEMPLATE_VARIABLES`, the same names :meth:`MetricQuery.values` fills.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from models.durations import format_duration

if TYPE_CHECKING:  # models.canary imports this module for TEMPLATE_VARIABLES
    from models.canary import CanaryMetric, CanarySpec
    from models.metric_templates import MetricTemplateSpec

#: Flagger's built-in Istio queries for one target, with Flagger's variable names.
BUILTIN_QUERIES: dict[str, str] = {
    "request-success-rate": (
        "sum(rate(istio_requests_total{"
        'reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}",'
        'response_code!~"5.*"'
        "}[{{ interval }}])) / sum(rate(istio_requests_total{"
        'reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"'
        "}[{{ interval }}])) * 100"
    ),
    "request-duration": (
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
        'reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"'
        "}[{{ interval }}])) by (le))"
    ),
}

#: The evidence behind a metric: requests the target answered in the metric's window (Istio's
#: standard counter, as the built-in queries read it). Below ``minSampleCount`` the metric's
#: value is no data, whatever it says (one request in the window proves nothing).
REQUEST_COUNT_QUERY = (
    "sum(increase(istio_requests_total{"
    'reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"'
    "}[{{ interval }}]))"
)

#: ``{{ name }}`` in a template.
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
#: Prefix of a metric's own ``templateVariables`` (``{{ variables.tier }}``).
CUSTOM_PREFIX = "variables."


class TemplateMissing(LookupError):
    """A ``templateRef`` names a ``MetricTemplate`` that was not found (or does not load)."""


def template_resource(metric: CanaryMetric, spec: CanarySpec, namespace: str) -> str | None:
    """``namespace/name`` of the ``MetricTemplate`` resource a metric uses, if it uses one.

    A ``templateRef`` whose name ``analysis.metricTemplates`` declares is that inline
    template (as before resources existed); any other name is a resource, in the ref's
    namespace or else the canary's (Flagger's rule).
    """
    ref = metric.template_ref
    if ref is None or ref.name in spec.analysis.metric_templates:
        return None
    return f"{ref.namespace or namespace}/{ref.name}"


@dataclass(frozen=True)
class MetricQuery:
    """One metric of one rollout, ready to render: the template and what fills it in.

    Attributes:
        template: the PromQL template (inline, from ``metricTemplates`` or a
            ``MetricTemplate`` resource, or built in).
        namespace: the target's namespace.
        target: the target Deployment.
        service: the apex Service.
        interval: the rate window, as Flagger writes it (``1m30s``).
        variables: the metric's ``templateVariables``, sorted.
        address: the template's own Prometheus, or None for the default one.
        primary_side: ask about the ``-primary`` instead (the judge's baseline): ``target``,
            ``name`` and ``canary`` then name it.
    """

    template: str
    namespace: str
    target: str
    service: str
    interval: str
    variables: tuple[tuple[str, str], ...] = ()
    address: str | None = None
    primary_side: bool = False

    @classmethod
    def of(
        cls,
        metric: CanaryMetric,
        spec: CanarySpec,
        namespace: str,
        resources: Mapping[str, MetricTemplateSpec] | None = None,
    ) -> MetricQuery:
        """The query of ``metric`` for the canary ``spec`` in ``namespace``.

        ``resources`` are the ``MetricTemplate`` resources read for this analysis, by
        ``namespace/name`` (:func:`template_resource`).

        Raises:
            TemplateMissing: the metric names a resource that is not in ``resources``.
        """
        resource = template_resource(metric, spec, namespace)
        if metric.query is not None:
            template, address = metric.query, None
        elif resource is not None:
            found = (resources or {}).get(resource)
            if found is None:
                raise TemplateMissing(f"MetricTemplate {resource} not found")
            template, address = found.query, found.provider.address
        elif metric.template_ref is not None:
            declared = spec.analysis.metric_templates[metric.template_ref.name]
            template, address = declared.query, declared.address
        else:  # the spec model allows no other name here
            template, address = BUILTIN_QUERIES[metric.name], None
        return cls(
            template=template,
            namespace=namespace,
            target=spec.target_ref.name,
            service=spec.apex,
            interval=format_duration(metric.interval),
            variables=tuple(sorted(metric.template_variables.items())),
            address=address,
        )

    @property
    def workload(self) -> str:
        """The Deployment this query asks about: the target, or its ``-primary``."""
        return f"{self.target}-primary" if self.primary_side else self.target

    def for_primary(self) -> MetricQuery:
        """The same question about the ``-primary``: the baseline the judge compares with."""
        return replace(self, primary_side=True)

    def values(self) -> dict[str, str]:
        """Every variable a template may use, with this rollout's values."""
        values = {name: value(self) for name, value in _VALUES.items()}
        values.update({f"{CUSTOM_PREFIX}{key}": value for key, value in self.variables})
        return values

    def promql(self) -> str:
        """The query for this rollout alone, as the canary worker sends it."""
        return render(self.template, self.values())

    def sample_count(self) -> str:
        """The query of the requests behind this metric's value (its evidence)."""
        return render(REQUEST_COUNT_QUERY, self.values())


#: How each ``{{ variable }}`` is filled in (Flagger's names: ``name`` and ``canary`` are the
#: target, as in Flagger's templates).
_VALUES: Mapping[str, Callable[[MetricQuery], str]] = {
    "namespace": lambda q: q.namespace,
    "target": lambda q: q.workload,
    "service": lambda q: q.service,
    "interval": lambda q: q.interval,
    "name": lambda q: q.workload,
    "primary": lambda q: f"{q.target}-primary",
    "canary": lambda q: q.workload,
}
#: Variables a PromQL template may use, as ``{{ name }}`` (besides ``variables.*``).
TEMPLATE_VARIABLES = tuple(_VALUES)


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{ name }}``; an unknown name raises ``KeyError`` naming it."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"unknown template variable {{{{ {key} }}}}")
        return values[key]

    return VARIABLE.sub(substitute, template)


#: The variables of a sense's template (:class:`models.senses.PromQL`).
SENSE_VARIABLES = ("namespace", "name")


def render_for_targets(template: str, targets: Iterable[tuple[str, str]]) -> str:
    """A sense's template for many targets at once: each variable becomes an anchored regex.

    ``{{ namespace }}`` and ``{{ name }}`` stand in label-matcher values
    (``label=~"{{ name }}"``); they are filled with ``a|b|c`` of the escaped values, so one
    query answers for every target and its series are told apart by their labels. An
    unknown variable raises ``KeyError`` naming it.
    """
    pairs = sorted(set(targets))
    namespaces = sorted({namespace for namespace, _ in pairs})
    names = sorted({name for _, name in pairs})
    values = {
        "namespace": "|".join(_regex_literal(value) for value in namespaces),
        "name": "|".join(_regex_literal(value) for value in names),
    }
    return render(template, values)


def _regex_literal(value: str) -> str:
    """``value`` as a PromQL (RE2) regex literal inside a double-quoted string."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\\\1", value)


def number(series: Mapping[str, Any]) -> float | None:
    """The value of one instant-vector series, or None when it has none (or NaN, or ±Inf)."""
    raw = series.get("value")
    if not raw or len(raw) < 2:
        return None
    try:
        value = float(raw[1])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def series_values(result: list[dict[str, Any]]) -> list[float]:
    """The finite values of a range query's first series (NaN and ±Inf left out)."""
    if not result:
        return []
    values = []
    for point in result[0].get("values") or []:
        value = number({"value": point})
        if value is not None:
            values.append(value)
    return values


def value_of(result: list[dict[str, Any]]) -> float | None:
    """The single value of an instant-query result, or None when there is none (or NaN)."""
    return number(result[0]) if result else None
