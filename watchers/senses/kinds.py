"""Run every :class:`~models.senses.WatchKind` the operators declare: one informer per kind.

How it runs:

1. **The senses are grouped by resource** (group, version, plural): one informer per
   resource (and per watched namespace, when ``namespaces`` is set), however many operators
   watch it. When every sense on a resource has the same label selector, the API server
   applies it; otherwise the informer lists everything and each sense's selector is applied
   here (:mod:`watchers.senses.selectors`).
2. **Each change goes to every sense on its resource** that wants it (selector, annotation),
   and the sense's pure ``map`` function says which events it means. A list (the first, or
   after 410 Gone) is a change ``added`` per object, plus ``deleted`` for each object the
   watcher knew that is gone.
3. **Event IDs come from the object**, never from the moment (``k8s:<resource>:<uid>:<rv>``,
   ``...:<uid>:deleted``, or the ``map`` function's own, e.g. from ``metadata.generation``
   so that status-only changes repeat it), so a repeated list or a replayed watch sends
   nothing new and the workflow drops the repeat. The watcher also remembers the last ID it
   delivered to each workflow and does not send it again: a repeat never starts a new run
   of a finished workflow while this watcher runs.
4. **Resume.** The resourceVersion each stream has fully delivered is checkpointed in the
   watchers' ConfigMap (keys ``sense.<resource>``); a restart replays the changes since,
   deletions included. A delivery that fails is tried again with backoff, and the
   checkpoint does not move past it.

A ``map`` function that raises is logged with the operator and the sense, and the change
is skipped for that sense only: one operator's bug does not stop another's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.operator import EventEnvelope
from models.senses import (
    MAX_EMITS_PER_CHANGE,
    Emit,
    KubeChange,
    KubeChangeType,
    OperatorSenses,
    WatchKind,
)
from service.settings import WatchersSettings
from watchers.delivery import Delivery, DeliveryRequest, Outcome
from watchers.kube.checkpoint import Checkpoint
from watchers.kube.client import KubeCalls
from watchers.kube.informer import BOOKMARK, DELETED, MODIFIED, RELISTED, Informer, WatchEvent
from watchers.retry import retry_delay
from watchers.senses.resources import list_call
from watchers.senses.selectors import LabelSelector

logger = logging.getLogger(__name__)

#: ``EventEnvelope.source`` prefix of the events of this watcher.
SOURCE = "kubernetes"

#: Workflows whose last delivered event ID is remembered (oldest forgotten first).
MAX_REMEMBERED = 100_000

Resource = tuple[str, str, str]
"""``(group, version, plural)``."""


@dataclass(frozen=True)
class Subscriber:
    """One operator's sense on a resource, with its parsed selector."""

    operator: str
    sense: WatchKind
    selector: LabelSelector

    def wants(self, change: KubeChange) -> bool:
        """Whether the change's object matches the selector and the annotation."""
        return self.selector.matches(change.labels) and self.sense.wants(change)


@dataclass
class KindStats:
    """What the watcher did, for tests and logs."""

    changes: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    map_errors: int = 0
    failures: int = 0


def event_id(sense: WatchKind, change: KubeChange) -> str:
    """The ID of the event a change means, unless the map function gave one."""
    if change.type == "deleted":
        return f"k8s:{sense.resource}:{change.uid}:deleted"
    return f"k8s:{sense.resource}:{change.uid}:{change.resource_version}"


class KindWatcher:
    """Watches every resource some operator's :class:`WatchKind` names and signals events.

    Args:
        settings: namespaces, timeouts and where the checkpoint lives.
        delivery: hands events to Temporal.
        calls: bounded Kubernetes client calls (its API client opens the watches).
        table: every operator's senses.
    """

    def __init__(
        self,
        settings: WatchersSettings,
        delivery: Delivery,
        calls: KubeCalls,
        table: Sequence[OperatorSenses],
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.calls = calls
        self.subscribers: dict[Resource, list[Subscriber]] = {}
        for entry in table:
            for sense in entry.of_type(WatchKind):
                resource = (sense.group, sense.version, sense.plural)
                subscriber = Subscriber(entry.operator, sense, LabelSelector.parse(sense.labels))
                self.subscribers.setdefault(resource, []).append(subscriber)
        self.checkpoint = Checkpoint(
            calls, settings.state_namespace, f"{settings.state_name}-senses"
        )
        self.stats = KindStats()
        self.ready = asyncio.Event()
        self._informers: list[Informer] = []
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._streams: dict[str, Resource] = {}
        self._known: dict[str, dict[str, dict[str, Any]]] = {}
        self._versions: dict[str, str] = {}
        self._failing = 0
        self._last_sent: dict[tuple[str, str], str] = {}

    @property
    def informers(self) -> int:
        """Informers running (one per resource and namespace scope)."""
        return len(self._informers)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; saves the checkpoint on the way out."""
        if not self.subscribers:
            self.ready.set()
            await stop.wait()
            return
        loop = asyncio.get_running_loop()
        saved = await self.checkpoint.load()
        stopper = asyncio.create_task(self._stop_on(stop))
        try:
            self._start(loop, saved)
            await self._loop()
        finally:
            stopper.cancel()
            for informer in self._informers:
                informer.stop()
            await self._save()

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._queue.put_nowait(None)

    def _start(self, loop: asyncio.AbstractEventLoop, saved: dict[str, str]) -> None:
        def sink(event: WatchEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: we are stopping
                loop.call_soon_threadsafe(self._queue.put_nowait, event)

        namespaces: list[str | None] = list(self.settings.namespaces) or [None]
        for resource, subscribers in self.subscribers.items():
            group, version, plural = resource
            selectors = {s.sense.labels for s in subscribers}
            server_side = selectors.pop() if len(selectors) == 1 else ""
            for namespace in namespaces:
                name = f"sense.{plural}.{group or 'core'}.{version}"
                name += f".{namespace}" if namespace else ""
                self._streams[name] = resource
                call = list_call(self.calls.api, group, version, plural, namespace, server_side)
                informer = Informer(
                    name,
                    call,
                    sink=sink,
                    timeout_s=self.settings.watch_timeout_s,
                    resume_from=saved.get(name),
                    not_found_hint=f"does the API server serve {plural} in {group or 'core'}"
                    f"/{version}? (install its CRD)",
                )
                self._informers.append(informer)
                informer.start()
        if all(saved.get(name) for name in self._streams):
            self.ready.set()

    async def _loop(self) -> None:
        last_save = time.monotonic()
        listed: set[str] = set()
        while True:
            item = await self._queue.get()
            if item is None:
                return
            await self._handle(item)
            if item.type == RELISTED:
                listed.add(item.stream)
                if listed >= set(self._streams):
                    self.ready.set()
            if time.monotonic() - last_save >= self.settings.checkpoint_interval_s:
                await self._save()
                last_save = time.monotonic()

    async def _handle(self, event: WatchEvent) -> None:
        if event.type == BOOKMARK:
            self._versions[event.stream] = event.resource_version
            return
        known = self._known.setdefault(event.stream, {})
        changes: list[KubeChange] = []
        if event.type == RELISTED:
            listed = {str((o.get("metadata") or {}).get("uid") or ""): o for o in event.objects}
            changes += [KubeChange("deleted", o) for uid, o in known.items() if uid not in listed]
            changes += [KubeChange("added", o) for o in listed.values()]
            known.clear()
            known.update(listed)
        elif event.obj is not None:
            kind: KubeChangeType = "added"
            if event.type == DELETED:
                kind = "deleted"
            elif event.type == MODIFIED:
                kind = "modified"
            change = KubeChange(kind, event.obj)
            if kind == "deleted":
                known.pop(change.uid, None)
            else:
                known[change.uid] = event.obj
            changes.append(change)
        requests = [
            request
            for change in changes
            for subscriber in self.subscribers[self._streams[event.stream]]
            for request in self._requests(subscriber, change)
        ]
        self.stats.changes += len(changes)
        requests = [r for r in requests if self._last_sent.get(_key(r)) != r.envelope.id]
        await self._deliver(requests)
        self._versions[event.stream] = event.resource_version

    def _requests(self, subscriber: Subscriber, change: KubeChange) -> list[DeliveryRequest]:
        if not subscriber.wants(change):
            return []
        sense = subscriber.sense
        try:
            emits: Sequence[Emit] = sense.map(change)
        except Exception:
            self.stats.map_errors += 1
            logger.exception(
                "operator %s, %s: map failed on %s %s/%s; change skipped",
                subscriber.operator,
                sense.describe,
                change.type,
                change.namespace,
                change.name,
            )
            return []
        if len(emits) > MAX_EMITS_PER_CHANGE:
            logger.error(
                "operator %s, %s: %d events for one change (at most %d); change skipped",
                subscriber.operator,
                sense.describe,
                len(emits),
                MAX_EMITS_PER_CHANGE,
            )
            return []
        now = datetime.now(UTC)
        requests = []
        for emit in emits:
            envelope = EventEnvelope(
                id=emit.id or event_id(sense, change),
                type=emit.event.type_name(),
                payload=emit.event.model_dump(mode="json"),
                source=f"{SOURCE}/{sense.resource}",
                observed_at=now,
            )
            start = dict(emit.start) if emit.start is not None else None
            requests.append(DeliveryRequest(subscriber.operator, emit.target, envelope, start))
        return requests

    async def _deliver(self, requests: list[DeliveryRequest]) -> None:
        """Deliver in order per workflow; a failure is retried until it goes through."""
        attempt = 0
        pending = requests
        while pending:
            results = await self.delivery.deliver_many(pending)
            failed = [
                r
                for r, result in zip(pending, results, strict=True)
                if result.outcome is Outcome.FAILED
            ]
            for request, result in zip(pending, results, strict=True):
                if result.outcome is not Outcome.FAILED:
                    key = request.envelope.type
                    self.stats.delivered[key] = self.stats.delivered.get(key, 0) + 1
                    self._remember(request)
            if not failed:
                self._failing = 0
                return
            attempt += 1
            self._failing = len(failed)
            self.stats.failures += len(failed)
            delay = retry_delay(attempt)
            logger.warning("%d events not delivered; trying again in %.1fs", len(failed), delay)
            await asyncio.sleep(delay)
            pending = failed

    def _remember(self, request: DeliveryRequest) -> None:
        key = _key(request)
        self._last_sent.pop(key, None)
        self._last_sent[key] = request.envelope.id
        while len(self._last_sent) > MAX_REMEMBERED:
            del self._last_sent[next(iter(self._last_sent))]

    async def _save(self) -> None:
        if self._failing or not self._versions:
            return
        try:
            await self.checkpoint.save(dict(self._versions))
        except Exception:
            logger.warning("saving the senses' watch checkpoint failed", exc_info=True)


def _key(request: DeliveryRequest) -> tuple[str, str]:
    """``(operator, workflow ID)`` of a request."""
    return request.operator, request.workflow_id
