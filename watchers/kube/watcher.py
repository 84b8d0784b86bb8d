"""The Kubernetes watcher: Canaries and their Deployments in, canary workflow events out.

How it runs:

1. **Canaries are listed**, always (they are few, and every decision needs the index).
2. **Deployments are watched from the checkpointed resourceVersion** when there is one:
   the server replays every change made while the watcher was away, deletions included,
   without a cluster-wide list. Until a Deployment changes, the watcher trusts what each
   Canary's status says was delivered. With no checkpoint, or on 410 Gone, Deployments are
   listed and every Canary is reconciled against the list.
3. **Events are batched.** Each batch updates the index and the Deployment cache in order,
   then reconciles every Canary it touched, in parallel, from the *latest* state
   (:func:`~watchers.kube.decide.decide`): a burst of changes to one Deployment is one
   decision, and replays decide nothing new.
4. **Effects, then bookmarks.** A decision delivers its event (signal-with-start for a new
   revision, signal for a deletion), then records what it delivered in the Canary's status.
   A failed delivery is retried with backoff, and the checkpoint does not move past a batch
   until every decision in it is done, so a crash replays rather than loses.

Deleting a Canary waits on our finalizer until ``TargetDeleted`` reached its workflow, so a
deletion is never missed, even while no watcher runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes import client

from models.canary_watch import CANARY_FINALIZER, CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from service import commands
from service.settings import WatchersSettings
from watchers.delivery import Delivery, Outcome
from watchers.kube.canary_api import CanaryApi
from watchers.kube.checkpoint import Checkpoint
from watchers.kube.client import KubeCalls
from watchers.kube.decide import AddFinalizer, Command, Send, WriteStatus, decide
from watchers.kube.index import CanaryIndex
from watchers.kube.informer import (
    BOOKMARK,
    DELETED,
    RELISTED,
    Informer,
    WatchEvent,
)
from watchers.kube.objects import (
    ABSENT,
    OPERATOR,
    Absent,
    CanaryObject,
    DeploymentState,
    Key,
    key_of,
)
from watchers.retry import retry_delay

logger = logging.getLogger(__name__)

#: What to do when the API server does not serve Canaries.
CRD_HINT = "is the Canary CRD installed? kubectl apply -f deploy/crds/canary.yaml"
#: Tries of one decision (about ten minutes of backoff) before it waits for a new event.
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class _Retry:
    """Reconcile ``key`` again (a decision failed)."""

    key: Key


@dataclass
class _Stop:
    """Stop the loop."""


@dataclass
class WatcherStats:
    """What the watcher did, for tests, benchmarks and logs."""

    batches: int = 0
    reconciles: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    gets: int = 0

    def count(self, event_type: str) -> None:
        """Count one delivered event of ``event_type``."""
        self.sent[event_type] = self.sent.get(event_type, 0) + 1


class KubeWatcher:
    """Watches Canaries and their Deployments and signals canary workflows.

    Args:
        settings: namespaces, timeouts and where the checkpoint lives.
        delivery: hands events to Temporal.
        calls: bounded Kubernetes client calls.
        index: the Canary index to fill (shared with the status mirror and the Prometheus
            watcher); a new one by default.
    """

    def __init__(
        self,
        settings: WatchersSettings,
        delivery: Delivery,
        calls: KubeCalls,
        index: CanaryIndex | None = None,
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.calls = calls
        self.index = index if index is not None else CanaryIndex()
        self.canaries = CanaryApi(calls)
        self.checkpoint = Checkpoint(calls, settings.state_namespace, settings.state_name)
        self.stats = WatcherStats()
        self.ready = asyncio.Event()
        self._deployments: dict[Key, DeploymentState | Absent] = {}
        self._tombstones: dict[str, CanaryObject] = {}
        self._failing: dict[Key, int] = {}
        self._versions: dict[str, str] = {}
        self._informers: list[Informer] = []
        self._queue: asyncio.Queue[WatchEvent | _Retry | _Stop] = asyncio.Queue()
        self._scopes: dict[str, str | None] = {}
        self._released: dict[str, None] = {}
        self._queue_stopped = False

    # ------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; saves the checkpoint on the way out."""
        loop = asyncio.get_running_loop()
        stopper = asyncio.create_task(self._stop_on(stop))
        try:
            saved = await self.checkpoint.load()
            await self._start_canaries(loop)
            if self._queue_stopped:
                return
            resumed = self._start_deployments(loop, saved)
            if resumed:
                self._seed_from_status()
                await self._reconcile(set(self.index.keys()))
                self.ready.set()
            await self._loop()
        finally:
            stopper.cancel()
            for informer in self._informers:
                informer.stop()
            await self._save_checkpoint()

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._queue.put_nowait(_Stop())

    def _sink(self, loop: asyncio.AbstractEventLoop) -> Callable[[WatchEvent], None]:
        def put(event: WatchEvent) -> None:
            # A closed loop means we are shutting down: the event no longer matters.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._queue.put_nowait, event)

        return put

    def _streams(self, kind: str) -> list[tuple[str, str | None]]:
        namespaces = self.settings.namespaces
        if not namespaces:
            return [(kind, None)]
        return [(f"{kind}.{namespace}", namespace) for namespace in namespaces]

    async def _start_canaries(self, loop: asyncio.AbstractEventLoop) -> None:
        custom = client.CustomObjectsApi(self.calls.api)
        pending = set()
        for stream, namespace in self._streams("canaries"):
            self._scopes[stream] = namespace
            if namespace is None:
                informer = Informer(
                    stream,
                    custom.list_cluster_custom_object,
                    (CANARY_GROUP, CANARY_VERSION, CANARY_PLURAL),
                    sink=self._sink(loop),
                    timeout_s=self.settings.watch_timeout_s,
                    not_found_hint=CRD_HINT,
                )
            else:
                informer = Informer(
                    stream,
                    custom.list_namespaced_custom_object,
                    (CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL),
                    sink=self._sink(loop),
                    timeout_s=self.settings.watch_timeout_s,
                    not_found_hint=CRD_HINT,
                )
            self._informers.append(informer)
            pending.add(stream)
            informer.start()
        # Hold Deployment events back until every Canary is known.
        while pending:
            item = await self._queue.get()
            if isinstance(item, _Stop):
                self._queue_stopped = True
                return
            if isinstance(item, WatchEvent):
                self._apply_canary(item)
                if item.type == RELISTED:
                    pending.discard(item.stream)
        self.index.synced = True

    def _start_deployments(self, loop: asyncio.AbstractEventLoop, saved: dict[str, str]) -> bool:
        apps = client.AppsV1Api(self.calls.api)
        resumed = True
        for stream, namespace in self._streams("deployments"):
            self._scopes[stream] = namespace
            resume = saved.get(stream)
            resumed = resumed and bool(resume)
            if namespace is None:
                informer = Informer(
                    stream,
                    apps.list_deployment_for_all_namespaces,
                    sink=self._sink(loop),
                    timeout_s=self.settings.watch_timeout_s,
                    resume_from=resume,
                )
            else:
                informer = Informer(
                    stream,
                    apps.list_namespaced_deployment,
                    (namespace,),
                    sink=self._sink(loop),
                    timeout_s=self.settings.watch_timeout_s,
                    resume_from=resume,
                )
            self._informers.append(informer)
            informer.start()
        if resumed:
            logger.info("resuming the Deployment watch from %s", saved)
        return resumed

    def _seed_from_status(self) -> None:
        """Resuming: assume each target is as last delivered until its events say otherwise."""
        for canary in self.index:
            status = canary.status
            if status.observed_revision and status.target_uid:
                self._deployments.setdefault(
                    canary.target_key,
                    DeploymentState(
                        canary.namespace,
                        canary.target_name,
                        status.target_uid,
                        -1,
                        status.observed_revision,
                    ),
                )

    async def _loop(self) -> None:
        last_save = time.monotonic()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopping = any(isinstance(item, _Stop) for item in batch)
            affected: set[Key] = set()
            versions: dict[str, str] = {}
            for item in batch:
                if isinstance(item, _Retry):
                    affected.add(item.key)
                elif isinstance(item, WatchEvent):
                    affected |= self._apply(item)
                    if item.stream.startswith("deployments"):
                        versions[item.stream] = item.resource_version
            self.stats.batches += 1
            await self._reconcile(affected)
            self._versions.update(versions)
            if stopping:
                return
            if time.monotonic() - last_save >= self.settings.checkpoint_interval_s:
                await self._save_checkpoint()
                last_save = time.monotonic()

    async def _save_checkpoint(self) -> None:
        if self._failing or not self._versions:
            return  # a decision is still pending: resuming must replay its event
        try:
            await self.checkpoint.save(dict(self._versions))
        except Exception:
            logger.warning("saving the watch checkpoint failed", exc_info=True)

    # ------------------------------------------------------------------ applying events

    def _apply(self, event: WatchEvent) -> set[Key]:
        if event.stream.startswith("canaries"):
            return self._apply_canary(event)
        return self._apply_deployment(event)

    def _apply_canary(self, event: WatchEvent) -> set[Key]:
        if event.type == BOOKMARK:
            return set()
        if event.type == RELISTED:
            scope = self._scopes.get(event.stream)
            listed = {key_of(raw): CanaryObject.from_raw(raw) for raw in event.objects}
            for key in self.index.keys(scope):
                if key not in listed:
                    self._bury(self.index.remove(key))
            for canary in listed.values():
                self.index.put(canary)
            return set(listed)
        assert event.obj is not None
        canary = CanaryObject.from_raw(event.obj)
        if event.type == DELETED:
            known = self.index.get(canary.key)
            if known is not None and known.uid == canary.uid:
                self.index.remove(canary.key)
            self._bury(canary)
            return {canary.key}
        known = self.index.get(canary.key)
        if known is not None and known.uid == canary.uid and _older(canary, known):
            return set()  # we already hold a newer version, from our own write's answer
        self.index.put(canary)
        return {canary.key}

    def _bury(self, canary: CanaryObject | None) -> None:
        """A Canary vanished: its workflow must hear it (unless our finalizer already told it)."""
        if canary is not None and canary.target_name:
            self._tombstones[canary.uid] = canary

    def _apply_deployment(self, event: WatchEvent) -> set[Key]:
        if event.type == BOOKMARK:
            return set()
        if event.type == RELISTED:
            scope = self._scopes.get(event.stream)
            listed = {key_of(raw): raw for raw in event.objects}
            affected: set[Key] = set()
            for target in self.index.targets(scope):
                raw = listed.get(target)
                self._deployments[target] = (
                    DeploymentState.from_raw(raw) if raw is not None else ABSENT
                )
                affected |= self.index.targeting(target)
            self.ready.set()
            return affected
        assert event.obj is not None
        target = key_of(event.obj)
        canaries = self.index.targeting(target)
        if not canaries:
            return set()
        self._deployments[target] = (
            ABSENT if event.type == DELETED else DeploymentState.from_raw(event.obj)
        )
        return canaries

    # ------------------------------------------------------------------ deciding

    async def _reconcile(self, keys: set[Key]) -> None:
        tombstones = list(self._tombstones.values())
        jobs = [self._guarded(key, self._reconcile_one(key)) for key in keys]
        jobs += [self._guarded(t.key, self._mourn(t)) for t in tombstones]
        if jobs:
            await asyncio.gather(*jobs)

    async def _guarded(self, key: Key, job: Any) -> None:
        try:
            await job
        except Exception as error:
            attempts = self._failing.get(key, 0) + 1
            self.stats.failures += 1
            if attempts > MAX_ATTEMPTS:
                # Give the checkpoint back; the Canary's next event decides again.
                logger.error("canary %s/%s: giving up after %d tries: %s", *key, attempts, error)
                self._failing.pop(key, None)
                return
            self._failing[key] = attempts
            delay = retry_delay(attempts)
            logger.warning("canary %s/%s: %s; trying again in %.1fs", key[0], key[1], error, delay)
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, _Retry(key))
        else:
            self._failing.pop(key, None)

    async def _reconcile_one(self, key: Key) -> None:
        canary = self.index.get(key)
        if canary is None:
            return
        self.stats.reconciles += 1
        deployment = await self._deployment(canary)
        for action in decide(canary, deployment):
            if isinstance(action, AddFinalizer):
                updated = await self.canaries.set_finalizers(
                    canary, [*canary.finalizers, CANARY_FINALIZER]
                )
                if updated is None:
                    return  # changed or gone meanwhile: its next event decides again
                canary = self._refresh(updated)
            elif isinstance(action, WriteStatus):
                updated = await self.canaries.patch_status(canary, action.status)
                if updated is not None:
                    canary = self._refresh(updated)
            elif isinstance(action, Command):
                await self._command(action)
                updated = await self.canaries.patch_status(canary, action.status)
                if updated is not None:
                    canary = self._refresh(updated)
            elif isinstance(action, Send):
                await self._send(action)
                if action.status:
                    updated = await self.canaries.patch_status(canary, action.status)
                    if updated is not None:
                        canary = self._refresh(updated)
                if action.release:
                    self._remember_released(canary.uid)
                    rest = [f for f in canary.finalizers if f != CANARY_FINALIZER]
                    if await self.canaries.set_finalizers(canary, rest) is None:
                        raise RuntimeError("the Canary changed while its finalizer was released")

    async def _mourn(self, canary: CanaryObject) -> None:
        """Tell the workflow its Canary is gone, unless the finalizer path already did."""
        live = self.index.get(canary.key)
        if canary.uid not in self._released and (live is None or live.uid != canary.uid):
            finalizers = tuple({*canary.finalizers, CANARY_FINALIZER})
            gone = replace(canary, deleting=True, finalizers=finalizers)
            for action in decide(gone, ABSENT):
                if isinstance(action, Send):
                    await self._send(action)
            self._remember_released(canary.uid)
        self._tombstones.pop(canary.uid, None)

    def _remember_released(self, uid: str) -> None:
        self._released[uid] = None
        while len(self._released) > 10_000:
            del self._released[next(iter(self._released))]

    def _refresh(self, raw: dict[str, Any]) -> CanaryObject:
        canary = CanaryObject.from_raw(raw)
        known = self.index.get(canary.key)
        if known is not None and known.uid == canary.uid:
            self.index.put(canary)
        return canary

    async def _deployment(self, canary: CanaryObject) -> DeploymentState | Absent:
        target = canary.target_key
        known = self._deployments.get(target)
        if known is not None:
            return known
        self.stats.gets += 1
        raw = await self.canaries.get_deployment(*target)
        state: DeploymentState | Absent = ABSENT if raw is None else DeploymentState.from_raw(raw)
        # A watch event may have filled it meanwhile; that one is newer.
        return self._deployments.setdefault(target, state)

    async def _command(self, action: Command) -> None:
        """Give the workflow ``pause`` or ``resume`` (``spec.suspend``), the CLI's way.

        Nothing to command is not an error: no run, a finished one, or one already in that
        state (its validator refuses ``pause`` while paused) all mean the level is reached.
        A command no worker answered raises, so the Canary is tried again with backoff.
        """
        request = action.request
        try:
            handle = await commands.running_handle(self.delivery.client, action.workflow_id)
            await commands.accept(handle, request)
        except (commands.NoSuchWorkflow, commands.WorkflowFinished, commands.CommandRefused) as e:
            logger.info("%s for %s: nothing to do (%s)", request.command, action.workflow_id, e)
            return
        logger.info(
            "%s sent to %s (%s, by %s)",
            request.command,
            action.workflow_id,
            request.reason,
            request.by,
        )

    async def _send(self, action: Send) -> None:
        result = await self.delivery.deliver(
            OPERATOR, action.target, action.envelope, action.start_spec, action.stable
        )
        if result.outcome is Outcome.FAILED:
            raise RuntimeError(f"{action.envelope.type} not delivered: {result.detail}")
        self.stats.count(action.envelope.type)
        logger.info(
            "%s %s to %s (%s)",
            action.envelope.type,
            action.envelope.id,
            result.workflow_id,
            result.outcome.value,
        )


def _older(event: CanaryObject, known: CanaryObject) -> bool:
    """Whether ``event`` is an older version of the object than ``known``.

    resourceVersions are opaque to clients in general; the API server's etcd storage makes
    them increasing integers, and only then are they compared. The watcher holds newer
    versions than its events only after its own writes (it keeps the write's answer), and
    processing an older event again would only repeat a decision: harmless, not wrong.
    """
    if event.resource_version.isdigit() and known.resource_version.isdigit():
        return int(event.resource_version) < int(known.resource_version)
    return False
