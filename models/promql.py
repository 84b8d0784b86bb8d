"""Flagger's built-in Istio queries and the ``{{ variable }}`` templating of PromQL.

One copy, shared by the canary worker (one query per rollout) and the Prometheus watcher
(one grouped query for all rollouts), so both always ask Prometheus the same question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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

#: ``{{ name }}`` in a template.
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{ name }}``; an unknown name raises ``KeyError`` naming it."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"unknown template variable {{{{ {key} }}}}")
        return values[key]

    return VARIABLE.sub(substitute, template)
