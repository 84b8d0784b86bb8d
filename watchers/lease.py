"""Leader election over a Kubernetes Lease: of N watcher replicas, one watches at a time.

Why a Lease on top of event-ID dedupe: dedupe makes a repeated event harmless to a workflow
that is *running*, but two replicas would still double every query and status write, and
a signal-with-start racing a workflow that just completed could start it again. The Lease
(``coordination.k8s.io/v1``, the object kube-controller-manager uses) gives one leader; the
others stand by and take over within ``lease_duration_s`` of the leader going silent.
Dedupe still covers the moment of a hand-over, when an old and a new leader may overlap.

The algorithm is client-go's:

* acquire when the Lease is free, released, or **not renewed for a whole lease duration as
  measured by this replica's clock since it last saw the Lease change** (no clock-skew
  assumption between replicas);
* every write carries the resourceVersion read, so two candidates cannot both win (409);
* the leader renews every ``retry_s``; if it cannot renew for ``renew_deadline_s`` it stops
  leading (its watchers are cancelled) before anyone else may take over;
* on a clean stop the leader releases the Lease (empty holder), so the next one starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from watchers.kube.client import KubeCalls

logger = logging.getLogger(__name__)


class LeaderElector:
    """Campaigns for one Lease and runs a coroutine while it holds it.

    Args:
        calls: bounded Kubernetes calls.
        namespace: the Lease's namespace (must exist).
        name: the Lease's name.
        identity: this replica's name (``holderIdentity``).
        duration_s: how long a silent leader keeps the Lease.
        renew_deadline_s: how long the leader may fail to renew before stepping down.
        retry_s: pause between attempts, and between renewals.
    """

    def __init__(
        self,
        calls: KubeCalls,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_s: float = 2.0,
    ) -> None:
        if renew_deadline_s >= duration_s:
            raise ValueError("renew_deadline_s must be shorter than duration_s")
        self._calls = calls
        self._api = client.CoordinationV1Api(calls.api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration_s = duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_s = retry_s
        self.leading = False
        #: Times this replica became leader.
        self.terms = 0
        self._observed_version: str | None = None
        self._observed_at = 0.0

    async def run(
        self, lead: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event
    ) -> None:
        """Until ``stop``: win the Lease, run ``lead(lost)`` while holding it, repeat.

        ``lead`` receives an event that is set when it must stop (leadership lost or
        ``stop``); it is cancelled if it has not returned shortly after.
        """
        while not stop.is_set():
            if not await self._attempt():
                await _wait(stop, self.retry_s)
                continue
            self.leading = True
            self.terms += 1
            logger.info("%s leads %s/%s", self.identity, self.namespace, self.name)
            lost = asyncio.Event()
            task = asyncio.create_task(lead(lost))
            try:
                await self._hold(stop, task)
            finally:
                self.leading = False
                lost.set()
                await _finish(task, grace_s=max(1.0, self.renew_deadline_s / 2))
            if stop.is_set():
                await self.release()
            else:
                logger.warning("%s stopped leading %s; campaigning again", self.identity, self.name)
                await _wait(stop, self.retry_s)

    async def _hold(self, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        renewed = time.monotonic()
        while not stop.is_set() and not task.done():
            await _wait(stop, self.retry_s, task)
            if stop.is_set() or task.done():
                return
            if await self._attempt():
                renewed = time.monotonic()
            elif time.monotonic() - renewed >= self.renew_deadline_s:
                return

    async def release(self) -> None:
        """Give the Lease up if we hold it, so another replica takes over at once."""
        try:
            lease = await self._calls(self._api.read_namespaced_lease, self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            await self._calls(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
            logger.info("%s released the lease %s", self.identity, self.name)
        except client.ApiException as error:
            logger.info("releasing the lease failed: %s %s", error.status, error.reason)

    async def _attempt(self) -> bool:
        """Acquire or renew once; True when we hold the Lease afterwards."""
        try:
            return await self._acquire_or_renew()
        except client.ApiException as error:
            if error.status == 409:
                return False
            hint = f" (does namespace {self.namespace} exist?)" if error.status == 404 else ""
            logger.warning("lease %s: %s %s%s", self.name, error.status, error.reason, hint)
            return False
        except Exception as error:  # the API server is away: not leading
            logger.warning("lease %s: %s", self.name, error)
            return False

    async def _acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        try:
            lease = await self._calls(self._api.read_namespaced_lease, self.name, self.namespace)
        except client.ApiException as error:
            if error.status != 404:
                raise
            await self._calls(
                self._api.create_namespaced_lease,
                self.namespace,
                client.V1Lease(
                    metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                    spec=self._spec(now, acquired=now, transitions=0),
                ),
            )
            return True
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity
        if holder and holder != self.identity:
            version = lease.metadata.resource_version if lease.metadata else None
            if version != self._observed_version:
                self._observed_version, self._observed_at = version, time.monotonic()
            duration = spec.lease_duration_seconds or self.duration_s
            if time.monotonic() - self._observed_at < duration:
                return False
            logger.info("%s takes over the lease from silent %s", self.identity, holder)
        ours = holder == self.identity
        lease.spec = self._spec(
            now,
            acquired=spec.acquire_time if ours and spec.acquire_time else now,
            transitions=(spec.lease_transitions or 0) + (0 if ours else 1),
        )
        await self._calls(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
        return True

    def _spec(self, now: datetime, *, acquired: datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.duration_s)),
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )


async def _wait(
    stop: asyncio.Event, seconds: float, task: asyncio.Task[None] | None = None
) -> None:
    """Sleep ``seconds``, waking early on ``stop`` (or when ``task`` ends)."""
    waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(stop.wait())}
    if task is not None:
        waiters.add(task)  # type: ignore[arg-type]
    _done, pending = await asyncio.wait(
        waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for waiter in pending:
        if waiter is not task:
            waiter.cancel()


async def _finish(task: asyncio.Task[None], grace_s: float) -> None:
    """Let ``task`` end on its own for ``grace_s``, then cancel it; log its failure."""
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await task
        except Exception:
            logger.exception("the leader's watchers failed")
