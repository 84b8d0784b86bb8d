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

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from models.canary import CanarySpec
from models.promql import (
    BUILTIN_QUERIES,
    VARIABLE,
    MetricQuery,
    number,
    template_resource,
    value_of,
)

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
        name: the metric's name in ``analysis.metrics``.
        query: its query for this rollout alone (the one the ``canary.analyse`` activity
            sends), which :func:`plan` shares with other rollouts' where it can.
    """

    workflow_id: str
    name: str
    query: MetricQuery

    @property
    def namespace(self) -> str:
        """The target's namespace."""
        return self.query.namespace

    @property
    def target(self) -> str:
        """The target Deployment."""
        return self.query.target


def wanted_metrics(workflow_id: str, namespace: str, spec: CanarySpec) -> list[Wanted]:
    """The metrics of one rollout, each with its template resolved.

    A metric whose ``templateRef`` names a ``MetricTemplate`` resource is left out: the
    watcher reads no resources (it only observes Canaries and Prometheus), so such a metric
    is judged by the interval's analysis alone, which reads the template each time.
    """
    return [
        Wanted(workflow_id, metric.name, MetricQuery.of(metric, spec, namespace))
        for metric in spec.analysis.metrics
        if template_resource(metric, spec, namespace) is None
    ]


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
            return dict.fromkeys(self.members, value_of(result))
        by_workload: dict[tuple[str, str], float | None] = {}
        for series in result:
            labels = series.get("metric") or {}
            key = (str(labels.get(GROUP_LABELS[0], "")), str(labels.get(GROUP_LABELS[1], "")))
            by_workload[key] = number(series)
        return {m: by_workload.get((m.namespace, m.target)) for m in self.members}


def plan(wanted: Iterable[Wanted]) -> list[PlannedQuery]:
    """The queries of one tick: one per shared template, one per rollout otherwise."""
    groups: dict[tuple[Any, ...], list[Wanted]] = {}
    singles: list[PlannedQuery] = []
    for item in wanted:
        query = item.query
        if shareable(query.template):
            key = (
                _grouped_template(query.template),
                query.interval,
                query.variables,
                query.address,
            )
            groups.setdefault(key, []).append(item)
        else:
            try:
                promql = query.promql()
            except KeyError:
                continue  # the spec model refuses such templates; nothing to ask
            singles.append(PlannedQuery(promql, query.address, (item,), grouped=False))
    queries = []
    for (template, _, _, address), members in groups.items():
        # The members' query with the grouped template, for all of them at once: they share
        # interval, variables and Prometheus (the key); a shareable template uses no other.
        shared = replace(
            members[0].query,
            template=template,
            namespace=alternation(m.namespace for m in members),
            target=alternation(m.target for m in members),
        )
        queries.append(PlannedQuery(shared.promql(), address, tuple(members), True))
    return queries + singles
