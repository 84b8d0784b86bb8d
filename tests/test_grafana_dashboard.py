"""The Grafana dashboard in ``deploy/grafana/`` reads only metrics Autopilot exports, and shows
every one of them: a renamed metric fails here, not on a user's empty panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchers.kube.canary_metrics import DURATION, NAMES

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "autopilot-canary.json"
#: What Prometheus serves for each exported metric (a histogram as its three series).
SERVED = {*NAMES, *(f"{DURATION}{suffix}" for suffix in ("_bucket", "_count", "_sum"))}


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression of the panels and of the template variables."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]["query"]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: what is left once strings, label matchers,
    ranges, ``by (...)`` clauses, function calls, numbers and the label that Grafana's
    ``label_values(metric, label)`` lists are taken out."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = (
        re.sub(r",\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", ")", bare)
        if "label_values" in bare
        else bare
    )
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\s*\(", "(", bare)
    return set(re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b", bare)) - {"e"}


def test_every_query_reads_only_metrics_autopilot_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())

    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= SERVED, f"{sorted(names - SERVED)} are not exported ({expr!r})"


def test_every_exported_metric_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())

    used = {name for expr in queries(dashboard) for name in metric_names(expr)}

    shown = {name.removesuffix("_bucket").removesuffix("_count") for name in used}
    assert shown >= set(NAMES), f"no panel for {sorted(set(NAMES) - shown)}"


def test_the_reader_of_this_test_finds_metric_names_as_prometheus_would() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, name) (rate(x_bucket{name=~"$name"}[5m])))'

    assert metric_names(expr) == {"x_bucket"}
    assert metric_names('label_values(x{namespace=~"$namespace"}, name)') == {"x"}
