"""One entry point for every watcher: :func:`run_watchers`, which ``worker_main`` runs beside
the worker (or alone).

What runs where:

* the **webhook server** runs on every replica (put them behind one Service): each request
  is answered by one replica, and event IDs make a sender's retries harmless;
* the **Kubernetes watcher**, the **status mirror** and the **Prometheus watcher** run only on
  the replica that holds the Lease (:class:`~watchers.lease.LeaderElector`), built afresh
  for each term so a new leader starts from the cluster's state, not from memory; so do
  the runtimes of the senses operators declare (:mod:`watchers.senses`).

What runs is what the operators declare (:class:`~models.senses.OperatorSenses`, handed
over by the worker): the canary's Canary watcher and metric sampler only when an operator
declares them (:class:`~models.senses.Dedicated`), one informer per Kubernetes kind some
:class:`~models.senses.WatchKind` names, one query per :class:`~models.senses.PromQL`
template per interval, and ``POST /v1/events`` accepting the declared
:class:`~models.senses.Webhook` event types (unless ``AUTOPILOT_WEBHOOK_ALLOWED_EVENT_TYPES``
says otherwise). Without a table (tests that run one watcher) the canary's watchers run
and the generic endpoint accepts any event.

With ``leader_election`` off (one replica, or tests), they simply run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client as kube_client
from kubernetes.config.config_exception import ConfigException
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from models.senses import OperatorSenses, dedicated, webhook_routes
from service.settings import WatchersSettings, WebhookSettings
from watchers.approvals import ApprovalWatcher
from watchers.delivery import Delivery
from watchers.kube.canary_api import CanaryApi
from watchers.kube.canary_metrics import CanaryMetrics
from watchers.kube.client import KubeCalls, api_client
from watchers.kube.index import CanaryIndex
from watchers.kube.status import StatusMirror
from watchers.kube.watcher import KubeWatcher
from watchers.lease import LeaderElector
from watchers.prometheus.watcher import PrometheusWatcher
from watchers.retry import retry_delay
from watchers.senses.kinds import KindWatcher
from watchers.senses.readings import ReadingsWatcher
from watchers.visibility import WorkflowDirectory
from watchers.webhooks import serve_webhooks
from watchers.webhooks.github import SERVICE_EVENT

logger = logging.getLogger(__name__)


@dataclass
class LeaderWatchers:
    """The watchers of one leadership term (the canary's share one Canary index)."""

    kube: KubeWatcher | None
    status: StatusMirror | None
    prometheus: PrometheusWatcher | None
    kinds: KindWatcher | None = None
    readings: ReadingsWatcher | None = None
    approvals: ApprovalWatcher | None = None

    @classmethod
    def build(
        cls,
        settings: WatchersSettings,
        delivery: Delivery,
        calls: KubeCalls,
        registry: CollectorRegistry | None = None,
        senses: Sequence[OperatorSenses] | None = None,
    ) -> LeaderWatchers:
        """Fresh watchers over a fresh index: those the senses declare (all, without them)."""
        canary = senses is None or bool(dedicated(senses, "canary-resources"))
        samples = senses is None or bool(dedicated(senses, "canary-metric-samples"))
        kube = status = prometheus = None
        if canary:
            index = CanaryIndex()
            directory = WorkflowDirectory(delivery.client)
            kube = KubeWatcher(settings, delivery, calls, index)
            # The registry the webhook server's /metrics shows (see create_app).
            served = registry if registry is not None else delivery.metrics.registry
            metrics = CanaryMetrics.for_registry(served)
            status = StatusMirror(
                settings, delivery.client, index, CanaryApi(calls), directory, metrics
            )
            if settings.prometheus and samples:
                prometheus = PrometheusWatcher(settings, delivery, index, directory, registry)
        kinds = KindWatcher(settings, delivery, calls, senses) if senses else None
        readings = (
            ReadingsWatcher(settings, delivery, senses) if senses and settings.prometheus else None
        )
        approvals = (
            ApprovalWatcher(settings, delivery.client, calls) if settings.approvals else None
        )
        return cls(kube, status, prometheus, kinds, readings, approvals)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; one failing watcher ends the term (the others are cancelled)."""
        async with asyncio.TaskGroup() as group:
            if self.kube is not None:
                group.create_task(self.kube.run(stop))
            if self.status is not None:
                group.create_task(self._after_sync(self.status.run, stop))
            if self.prometheus is not None:
                group.create_task(self._after_sync(self.prometheus.run, stop))
            if self.kinds is not None:
                group.create_task(self.kinds.run(stop))
            if self.readings is not None:
                group.create_task(self.readings.run(stop))
            if self.approvals is not None:
                group.create_task(self.approvals.run(stop))

    async def _after_sync(
        self, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event
    ) -> None:
        """Start ``run`` once the Kubernetes watcher knows every Canary."""
        assert self.kube is not None
        ready = asyncio.ensure_future(self.kube.ready.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        stopped.cancel()
        if not stop.is_set():
            await run(stop)


class Runner:
    """Runs the configured watchers until told to stop.

    Args:
        settings: which watchers run, and how.
        delivery: hands every event to Temporal (its client is also used for visibility).
        webhook_settings: the webhook server's settings; from ``AUTOPILOT_WEBHOOK_*`` by default.
        registry: Prometheus registry for the watchers' counters; the global one by default.
        api: a Kubernetes client; built from ``settings.kubeconfig`` by default.
        senses: every operator's senses (the worker's registry); ``None`` runs the canary's
            watchers and accepts any event at ``POST /v1/events``.
    """

    def __init__(
        self,
        settings: WatchersSettings,
        delivery: Delivery,
        *,
        webhook_settings: WebhookSettings | None = None,
        registry: CollectorRegistry | None = None,
        api: kube_client.ApiClient | None = None,
        senses: Sequence[OperatorSenses] | None = None,
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.webhook_settings = webhook_settings
        self.registry = registry
        self._api = api
        self.senses = senses
        self.elector: LeaderElector | None = None
        #: The watchers of the current term (None while standing by).
        self.current: LeaderWatchers | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve webhooks and, while leading, watch; return once ``stop`` is set."""
        settings = self.settings
        webhooks: asyncio.Task[None] | None = None
        if settings.webhooks:
            webhooks = asyncio.create_task(
                serve_webhooks(
                    routed_settings(self.webhook_settings or WebhookSettings(), self.senses),
                    self.delivery,
                    registry=self.registry,
                )
            )
        try:
            if settings.kubernetes:
                await self._watch(stop)
            else:
                if settings.prometheus:
                    logger.warning(
                        "the Prometheus watcher needs the Kubernetes watcher (Canary objects); "
                        "it is not started"
                    )
                await stop.wait()
        finally:
            if webhooks is not None:
                webhooks.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await webhooks

    async def _watch(self, stop: asyncio.Event) -> None:
        try:
            api = self._api or api_client(self.settings.kubeconfig)
        except (ConfigException, OSError) as error:
            logger.warning(
                "no Kubernetes configuration (%s): the Kubernetes and Prometheus watchers "
                "are off; set KUBECONFIG or AUTOPILOT_WATCH_KUBECONFIG",
                error,
            )
            await stop.wait()
            return
        calls = KubeCalls(api, self.settings.api_concurrency)
        try:
            if not self.settings.leader_election:
                await self._lead_until(calls, stop)
                return
            self.elector = LeaderElector(
                calls,
                self.settings.state_namespace,
                self.settings.state_name,
                self.settings.identity,
                duration_s=self.settings.lease_duration_s,
                renew_deadline_s=self.settings.lease_renew_deadline_s,
                retry_s=self.settings.lease_retry_s,
            )
            await self.elector.run(lambda lost: self._lead(calls, lost), stop)
        finally:
            if self._api is None:
                api.close()

    async def _lead_until(self, calls: KubeCalls, stop: asyncio.Event) -> None:
        """Without a Lease: run the watchers, and start them again if they fail."""
        failures = 0
        while not stop.is_set():
            try:
                await self._lead(calls, stop)
            except Exception:
                failures += 1
                delay = retry_delay(failures + 1)
                logger.exception("the watchers failed; starting them again in %.1fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            else:
                failures = 0

    async def _lead(self, calls: KubeCalls, stop: asyncio.Event) -> None:
        self.current = LeaderWatchers.build(
            self.settings, self.delivery, calls, self.registry, self.senses
        )
        try:
            await self.current.run(stop)
        finally:
            self.current = None


def routed_settings(
    settings: WebhookSettings, senses: Sequence[OperatorSenses] | None
) -> WebhookSettings:
    """The webhook settings with the routes the senses declare, where settings are silent.

    ``POST /v1/events`` accepts the declared :class:`~models.senses.Webhook` event types
    (an explicit ``allowed_event_types`` wins); GitHub pushes go to the one operator that
    declares the ``github`` watcher with ``ServiceCheckedIn``, unless ``github_operator`` names
    one.
    """
    if senses is None:
        return settings
    update: dict[str, Any] = {}
    if settings.allowed_event_types is None:
        update["allowed_event_types"] = webhook_routes(senses)
    if settings.github_operator is None:
        # Pushes go to the one operator whose github sense sends the push's event (several
        # may take pull requests: quarantine and autoroute both wait on reviews).
        takers = dedicated(senses, "github", sends=SERVICE_EVENT)
        if len(takers) == 1:
            update["github_operator"] = takers[0]
    return settings.model_copy(update=update)


async def run_watchers(
    settings: WatchersSettings | None = None,
    delivery: Delivery | None = None,
    stop_event: asyncio.Event | None = None,
    *,
    client: Client | None = None,
    task_queue: str | None = None,
    stop: asyncio.Event | None = None,
    webhook_settings: WebhookSettings | None = None,
    registry: CollectorRegistry | None = None,
    senses: Sequence[OperatorSenses] | None = None,
) -> None:
    """Run every configured watcher until the stop event is set (``worker_main`` calls this).

    Either ``run_watchers(settings, delivery, stop_event)``, or, as ``worker_main`` does,
    ``run_watchers(client=..., task_queue=..., stop=...)`` with settings from the environment.

    Args:
        settings: which watchers run and how; ``AUTOPILOT_WATCH_*`` by default.
        delivery: hands events to Temporal; its client is also used to read visibility.
        stop_event: set it to stop; the Lease is released and checkpoints are saved.
        client: a Temporal client (pydantic data converter), when no ``delivery`` is given.
        task_queue: the workers' task queue, when no ``delivery`` is given.
        stop: the same as ``stop_event``.
        webhook_settings: the webhook server's settings (``AUTOPILOT_WEBHOOK_*`` by default).
        registry: Prometheus registry for the counters (the global one by default).
        senses: every operator's senses (see :class:`Runner`).

    Raises:
        ValueError: neither a delivery nor a client and task queue, or no stop event.
    """
    if delivery is None:
        if client is None or not task_queue:
            raise ValueError("give a delivery, or a client and a task_queue")
        delivery = Delivery(client, task_queue=task_queue)
    event = stop_event or stop
    if event is None:
        raise ValueError("give a stop event")
    runner = Runner(
        settings or WatchersSettings(),
        delivery,
        webhook_settings=webhook_settings,
        registry=registry,
        senses=senses,
    )
    await runner.run(event)
