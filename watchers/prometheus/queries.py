"""Plan the PromQL of one sampling tick: one query per metric template, whatever the rollouts.

Why: Flagger sends one query per canary per metric per interval and degraded near 50-70
canaries. Here every rollout that wants the same template (same query text, rate window,
variables and Prometheus) shares **one** query that covers all of them at once, grouped
``by (destination_workload_namespace, destination_workload)``; its series are then fanned
out to the rollouts by those two labels. Queries per tick = distinct templates in use.

Which templates can be shared:

* the built-in ``request-success-rate`` and ``request-duration`` (Flagger's Istio queries),
  rewritten here in grouped form - the same numbers per workload as the per-canary query
  the ``canary.analyse`` activity sends;
* a custom template whose every aggregation keeps both labels
  (``sum by (destination_workload_namespace, destination_workload) (...)``) and which uses
  ``{{ namespace }}`` and ``{{ target }}`` only as label-matcher values
  (``label="{{ target }}"``). The matchers become regular expressions over every target.

Any other template (one that uses ``{{ primary }}`` or ``{{ service }}``, or sums the labels
away) is sent once per rollout, exactly as written, and counted as such.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from models.canary import CanaryMetric, CanarySpec, format_duration
from models.promql import BUILTIN_QUERIES, VARIABLE, render

#: The labels every grouped query keeps, and by which its series are fanned out.
GROUP_LABELS = ("destination_workload_namespace", "destination_workload")
_BY = f"by ({', '.join(GROUP_LABELS)})"

_SELECTOR = (
    'reporter="destination",'
    'destination_workload_namespace=~"{{ namespace }}",'
    'destination_workload=~"{{ target }}"'
)

#: Flagger's built-in Istio metrics, grouped by workload.
GROUPED_BUILTINS: dict[str, str] = {
    "request-success-rate": (
        f"sum {_BY} (rate(istio_requests_total{{{_SELECTOR},"
        f'response_code!~"5.*"}}[{{{{ interval }}}}]))'
        f" / sum {_BY} (rate(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}])) * 100"
    ),
    "request-duration": (
        f"histogram_quantile(0.99, sum by (le, {', '.join(GROUP_LABELS)}) "
        f"(rate(istio_request_duration_milliseconds_bucket{{{_SELECTOR}}}[{{{{ interval }}}}])))"
    ),
}

#: Variables that stand for the target and may be shared through a regular expression.
_SHAREABLE = {"namespace": "namespace", "target": "target", "name": "target", "canary": "target"}
#: ``label="{{ var }}"`` or ``label=~"{{ var }}"``: a matcher value, the only shareable use.
_MATCHER = re.compile(r'(=~?)"\{\{\s*(namespace|target|name|canary)\s*\}\}"')
_AGGREGATION = re.compile(r"\b(by|without)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class Wanted:
    """One metric of one rollout, to be sampled.

    Attributes:
        workflow_id: the rollout's workflow.
        namespace: the target's namespace.
        target: the target Deployment.
        name: the metric's name in ``analysis.metrics``.
        template: its PromQL template.
        interval: its rate window (``{{ interval }}``).
        variables: its ``templateVariables``, sorted.
        address: its Prometheus, or None for the watcher's.
        service: the apex Service (``{{ service }}``).
    """

    workflow_id: str
    namespace: str
    target: str
    name: str
    template: str
    interval: str
    variables: tuple[tuple[str, str], ...]
    address: str | None
    service: str

    def values(self) -> dict[str, str]:
        """Every template variable, for this rollout alone."""
        values = {
            "namespace": self.namespace,
            "name": self.target,
            "target": self.target,
            "canary": self.target,
            "primary": f"{self.target}-primary",
            "service": self.service,
            "interval": self.interval,
        }
        values.update({f"variables.{key}": value for key, value in self.variables})
        return values


def wanted_metrics(workflow_id: str, namespace: str, spec: CanarySpec) -> list[Wanted]:
    """The metrics of one rollout, each with its template resolved."""
    wanted = []
    for metric in spec.analysis.metrics:
        template, address = _template(metric, spec)
        wanted.append(
            Wanted(
                workflow_id=workflow_id,
                namespace=namespace,
                target=spec.target_ref.name,
                name=metric.name,
                template=template,
                interval=format_duration(metric.interval),
                variables=tuple(sorted(metric.template_variables.items())),
                address=address,
                service=spec.apex,
            )
        )
    return wanted


def _template(metric: CanaryMetric, spec: CanarySpec) -> tuple[str, str | None]:
    if metric.query is not None:
        return metric.query, None
    if metric.template_ref is not None:
        template = spec.analysis.metric_templates[metric.template_ref.name]
        return template.query, template.address
    return BUILTIN_QUERIES[metric.name], None


def shareable(template: str) -> bool:
    """Whether rollouts can share one query of ``template`` (see the module docstring)."""
    if template in GROUPED_BUILTINS.values() or template in BUILTIN_QUERIES.values():
        return True
    names = VARIABLE.findall(template)
    if any(not (n in _SHAREABLE or n == "interval" or n.startswith("variables.")) for n in names):
        return False
    target_uses = sum(1 for n in names if n in _SHAREABLE)
    if len(_MATCHER.findall(template)) != target_uses:
        return False  # a target variable used outside a matcher value
    clauses = _AGGREGATION.findall(template)
    if not clauses:
        return False
    for kind, labels in clauses:
        kept = {label.strip() for label in labels.split(",")}
        if kind == "without" or not set(GROUP_LABELS) <= kept:
            return False
    return True


def _grouped_template(template: str) -> str:
    for name, builtin in BUILTIN_QUERIES.items():
        if template == builtin:
            return GROUPED_BUILTINS[name]
    return _MATCHER.sub(lambda m: f'=~"{{{{ {_SHAREABLE[m.group(2)]} }}}}"', template)


def alternation(names: Iterable[str]) -> str:
    """A PromQL regular expression (as string-literal text) matching exactly ``names``."""
    # Names are DNS labels: '.' is the only regex metacharacter they can hold; the
    # backslash is doubled because the regex sits inside a PromQL string literal.
    return "|".join(name.replace(".", "\\\\.") for name in sorted(set(names)))


@dataclass(frozen=True)
class PlannedQuery:
    """One PromQL query of a tick and the rollouts it answers for.

    Attributes:
        promql: the query text.
        address: the Prometheus to ask, or None for the watcher's.
        members: the metrics it answers.
        grouped: True when its series are fanned out by :data:`GROUP_LABELS`.
    """

    promql: str
    address: str | None
    members: tuple[Wanted, ...]
    grouped: bool

    def fan_out(self, result: list[dict[str, Any]]) -> dict[Wanted, float | None]:
        """Each member's value; None (no data) when its series is missing or not a number."""
        if not self.grouped:
            value = _number(result[0]) if result else None
            return dict.fromkeys(self.members, value)
        by_workload: dict[tuple[str, str], float | None] = {}
        for series in result:
            labels = series.get("metric") or {}
            key = (str(labels.get(GROUP_LABELS[0], "")), str(labels.get(GROUP_LABELS[1], "")))
            by_workload[key] = _number(series)
        return {m: by_workload.get((m.namespace, m.target)) for m in self.members}


def _number(series: dict[str, Any]) -> float | None:
    raw = series.get("value")
    if not raw or len(raw) < 2:
        return None
    try:
        value = float(raw[1])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def plan(wanted: Iterable[Wanted]) -> list[PlannedQuery]:
    """The queries of one tick: one per shared template, one per rollout otherwise."""
    groups: dict[tuple[Any, ...], list[Wanted]] = {}
    singles: list[PlannedQuery] = []
    for item in wanted:
        if shareable(item.template):
            key = (_grouped_template(item.template), item.interval, item.variables, item.address)
            groups.setdefault(key, []).append(item)
        else:
            try:
                promql = render(item.template, item.values())
            except KeyError:
                continue  # the spec model refuses such templates; nothing to ask
            singles.append(PlannedQuery(promql, item.address, (item,), grouped=False))
    queries = []
    for (template, interval, variables, address), members in groups.items():
        values = {
            "namespace": alternation(m.namespace for m in members),
            "target": alternation(m.target for m in members),
            "interval": interval,
            **{f"variables.{key}": value for key, value in variables},
        }
        queries.append(PlannedQuery(render(template, values), address, tuple(members), True))
    return queries + singles
