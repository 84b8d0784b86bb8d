"""Run every :class:`~models.senses.PromQL` sense: one query per template per interval.

One tick of a sense:

1. the evaluation instant ``at`` is the interval boundary, so replicas and restarts evaluate
   the same instants and send the same event IDs (``promql:<metric>:<at>``);
2. the targets are the operator's running workflows, from Temporal visibility
   (:class:`~watchers.visibility.WorkflowDirectory`);
3. the template is rendered once for all of them (:func:`models.promql.render_for_targets`)
   and sent as one instant query;
4. each target gets a :class:`~models.senses.Reading` (the sense's subclass of it) with the
   value of the series whose labels name it, or ``None`` (no series, an error, a NaN): an
   explicit "no data", never silence. Readings are signalled, never started: a reading does
   not bring a finished instance back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException

from models.operator import EventEnvelope, Target, parse_workflow_id
from models.promql import number, render_for_targets
from models.senses import OperatorSenses, PromQL
from service.prometheus import prometheus_for
from service.settings import WatchersSettings
from watchers.delivery import Delivery, DeliveryRequest, Outcome
from watchers.ticks import at_interval_boundaries
from watchers.visibility import WorkflowDirectory

logger = logging.getLogger(__name__)

#: ``EventEnvelope.source`` of every reading.
SOURCE = "prometheus/sense"


@dataclass(frozen=True)
class ReadingReport:
    """What one tick of one sense did."""

    operator: str
    metric: str
    at: datetime
    targets: int
    queries: int
    no_data: int
    delivered: int


class ReadingsWatcher:
    """Runs the PromQL senses of every operator, each on its own interval.

    Args:
        settings: the Prometheus URL, its timeout and how fresh visibility must be.
        delivery: signals the readings (its client reads visibility).
        table: every operator's senses.
    """

    def __init__(
        self,
        settings: WatchersSettings,
        delivery: Delivery,
        table: Sequence[OperatorSenses],
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.senses = [
            (entry.operator, sense) for entry in table for sense in entry.of_type(PromQL)
        ]
        operators = {operator for operator, _ in self.senses}
        self.directories = {op: WorkflowDirectory(delivery.client, op) for op in operators}
        #: The last report of each (operator, metric), for tests and logs.
        self.last: dict[tuple[str, str], ReadingReport] = {}
        self.queries_sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every sense at its interval boundaries until ``stop`` is set."""
        if not self.senses:
            await stop.wait()
            return
        async with asyncio.TaskGroup() as group:
            for operator, sense in self.senses:
                group.create_task(self._every_interval(operator, sense, stop))

    async def _every_interval(self, operator: str, sense: PromQL, stop: asyncio.Event) -> None:
        async def tick(at: datetime) -> None:
            self.last[(operator, sense.metric)] = await self.tick(operator, sense, at)

        what = f"operator {operator}, {sense.describe}: tick"
        await at_interval_boundaries(sense.interval.total_seconds(), stop, tick, what)

    async def tick(self, operator: str, sense: PromQL, at: datetime) -> ReadingReport:
        """Read ``sense`` at ``at`` for every running instance of ``operator``; signal them."""
        directory = self.directories[operator]
        runs = await directory.ensure_fresh(min(self.settings.status_interval_s, 1.0))
        targets: list[Target] = []
        for workflow_id, summary in runs.items():
            if summary.running:
                _, namespace, name = parse_workflow_id(workflow_id)
                targets.append(Target(namespace=namespace, name=name))
        if not targets:
            return ReadingReport(operator, sense.metric, at, 0, 0, 0, 0)
        values = await self._ask(sense, targets, at)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        requests_ = []
        for target in targets:
            value = values.get((target.namespace, target.name))
            reading = sense.sends(metric=sense.metric, value=value, at=at)
            envelope = EventEnvelope(
                id=f"promql:{sense.metric}:{stamp}",
                type=sense.sends.type_name(),
                payload=reading.model_dump(mode="json"),
                source=SOURCE,
                observed_at=datetime.now(UTC),
            )
            requests_.append(DeliveryRequest(operator, target, envelope, None))
        results = await self.delivery.deliver_many(requests_)
        delivered = sum(result.outcome is Outcome.DELIVERED for result in results)
        no_data = sum(values.get((t.namespace, t.name)) is None for t in targets)
        return ReadingReport(operator, sense.metric, at, len(targets), 1, no_data, delivered)

    async def _ask(
        self, sense: PromQL, targets: Sequence[Target], at: datetime
    ) -> dict[tuple[str, str], float | None]:
        promql = render_for_targets(sense.query, [(t.namespace, t.name) for t in targets])
        self.queries_sent += 1
        try:
            result = await asyncio.to_thread(self._query, promql, at)
        except (requests.RequestException, PrometheusApiClientException, ValueError) as error:
            logger.warning("%s: query failed, sending no data: %s", sense.describe, error)
            return {}
        namespace_label, name_label = sense.labels
        values: dict[tuple[str, str], float | None] = {}
        for series in result:
            labels = series.get("metric") or {}
            key = (str(labels.get(namespace_label) or ""), str(labels.get(name_label) or ""))
            values[key] = number(series)
        return values

    def _query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        prometheus = prometheus_for(self.settings.prometheus_url, self.settings.query_timeout_s)
        result: list[dict[str, Any]] = prometheus.custom_query(
            promql, params={"time": f"{at.timestamp():.3f}"}
        )
        return result
