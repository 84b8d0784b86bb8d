"""The Prometheus watcher: one query per metric template per interval, fanned out as samples.

See :mod:`watchers.prometheus.queries` for how rollouts share queries and
:mod:`watchers.prometheus.watcher` for the sampling loop.
"""

from watchers.prometheus.queries import PlannedQuery, Wanted, plan, shareable
from watchers.prometheus.watcher import PrometheusWatcher, TickReport

__all__ = ["PlannedQuery", "PrometheusWatcher", "TickReport", "Wanted", "plan", "shareable"]
