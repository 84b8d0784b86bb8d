"""Kubernetes Events about the objects operators manage, written the way client-go's recorder does.

Why here: every operator tells its story the same way (``kubectl describe``, ``kubectl
events``), and the Python client has no recorder. This one keeps client-go's promises:

* **Deduplicated.** One Event per object, reason and message key (the message unless the
  caller gives a key). Its name is derived from the three, so it is found again without
  a cache: an occurrence within :data:`WINDOW` of the last one bumps ``count`` and
  ``lastTimestamp`` (and keeps the newest message); a later one starts the series over
  (``count`` 1, a new ``firstTimestamp``) on the same Event.
* **Idempotent.** Each occurrence carries a key (an activity's step key, the ID of the
  event a workflow handled). The Event remembers the last :data:`OCCURRENCES_KEPT`, so a
  retried activity finds its own occurrence and writes nothing.
* **Rate-limited.** A token bucket per object (:data:`BURST` Events, one more every
  :data:`REFILL_S`), like client-go's spam filter; an occurrence over it is dropped.
* **Best effort.** :meth:`Recorder.record` never raises and gives up after
  :data:`TIMEOUT_S`: an Event that cannot be written must not fail or hold up what it
  reports on.

Core ``v1`` Events (``count``, ``firstTimestamp``, ``lastTimestamp``): what ``kubectl
describe`` and ``kubectl events`` read. The verbs needed are ``get``, ``create`` and
``patch`` on ``events``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from activities.kube.calls import Json, is_not_found, to_dict
from activities.kube.client import core
from activities.kube.conflicts import retry_conflicts
from activities.kube.owner import Owner
from models.kube_events import EventNote

logger = logging.getLogger(__name__)

#: Occurrences of one Event closer together than this are counted on it (client-go's
#: aggregation interval); a later occurrence starts its count over.
WINDOW = timedelta(minutes=10)
#: Events one object may get at once, and the seconds until one more is allowed. Tighter
#: than nothing, looser than client-go's 25 and 5 minutes: a rollout writes one Event per
#: step and verdict, and its story must not stop after the 25th.
BURST = 25
REFILL_S = 10.0
#: Objects whose buckets are kept (least recently used ones are forgotten), as client-go.
MAX_BUCKETS = 4096
#: How many occurrence keys an Event remembers against retries.
OCCURRENCES_KEPT = 16
#: The whole budget of one :meth:`Recorder.record`, and of each API call in it.
TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 3.0

#: Annotation on our Events: hashes of the latest occurrences, space separated.
OCCURRENCES = "autopilot.dev/occurrences"

_MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about (its ``involvedObject``)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None

    @classmethod
    def of(cls, obj: Json) -> ObjectRef:
        """The reference to a live object as the API server sent it."""
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion") or ""),
            kind=str(obj.get("kind") or ""),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=meta.get("uid"),
        )

    def involved(self) -> Json:
        """``involvedObject``; ``kubectl describe`` finds Events by its ``uid`` too."""
        ref: Json = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }
        if self.uid:
            ref["uid"] = self.uid
        return ref


def event_name(ref: ObjectRef, reason: str, message_key: str) -> str:
    """``<object>.<16 hex digits>``: the one Event of this object, reason and message key."""
    identity = "\0".join((ref.kind, ref.namespace, ref.name, ref.uid or "", reason, message_key))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return f"{ref.name[: 253 - 17]}.{digest}"


def _occurrence(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parsed(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """A token bucket per object: :data:`BURST` at once, one more every :data:`REFILL_S`."""

    def __init__(self, burst: int = BURST, refill_s: float = REFILL_S) -> None:
        self.burst, self.refill_s = burst, refill_s
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take a token of ``key``'s bucket; False when it is empty."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(tokens=float(self.burst), at=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill_s)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


@dataclass
class Recorder:
    """Writes one operator's Events; one per process and operator (see :func:`recorder`).

    Attributes:
        owner: the operator; its marks go on each Event and its name is the source.
        limit: the per-object rate limit, shared by all of the operator's Events.
    """

    owner: Owner
    limit: RateLimit

    @property
    def component(self) -> str:
        """``source.component`` and ``reportingComponent`` (``autopilot-canary``...)."""
        return self.owner.field_manager

    async def record(
        self, about: ObjectRef, note: EventNote, occurrence: str, workflow_id: str
    ) -> str | None:
        """Write ``note`` as an Event on ``about``; never raises.

        Args:
            about: the object the Event is about.
            note: type, reason, message and message key.
            occurrence: stable across retries of the same occurrence.
            workflow_id: the workflow that reports it (an annotation on the Event).

        Returns:
            ``namespace/name`` of the Event, or None when nothing could be written (rate
            limit, API error, timeout), which is logged.
        """
        key = f"{about.kind}/{about.namespace}/{about.name}/{about.uid or ''}"
        if not self.limit.allow(key):
            logger.info("event %s on %s dropped: over the rate limit", note.reason, key)
            return None
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await self._write(about, note, _occurrence(occurrence), workflow_id)
        except Exception as error:  # best effort: an Event never fails what it reports
            logger.warning("event %s on %s not written: %s", note.reason, key, error)
            return None

    async def _write(
        self, about: ObjectRef, note: EventNote, occurrence: str, workflow_id: str
    ) -> str:
        namespace = about.namespace
        name = event_name(about, note.reason, note.message_key)
        api = core()
        read = functools.partial(api.read_namespaced_event, _request_timeout=REQUEST_TIMEOUT_S)
        create = functools.partial(api.create_namespaced_event, _request_timeout=REQUEST_TIMEOUT_S)
        patch = functools.partial(api.patch_namespaced_event, _request_timeout=REQUEST_TIMEOUT_S)

        async def attempt() -> None:
            now = datetime.now(UTC)
            try:
                live = to_dict(await self.owner.call(read, name, namespace))
            except Exception as error:
                if not is_not_found(error):
                    raise
                body = self._new(about, note, name, occurrence, workflow_id, now)
                # 409: written meanwhile (a retry racing itself); read it again.
                await self.owner.call(create, namespace, body, field_manager=self.component)
                return
            changes = self._bump(live, note, occurrence, now)
            if changes is not None:
                await self.owner.call(
                    patch,
                    name,
                    namespace,
                    changes,
                    field_manager=self.component,
                    _content_type=_MERGE_PATCH,
                )

        await retry_conflicts(attempt, f"Event {namespace}/{name}")
        return f"{namespace}/{name}"

    def _new(
        self,
        about: ObjectRef,
        note: EventNote,
        name: str,
        occurrence: str,
        workflow_id: str,
        now: datetime,
    ) -> Json:
        metadata = self.owner.metadata(
            name, about.namespace, workflow_id, annotations={OCCURRENCES: occurrence}
        )
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": about.involved(),
            "type": note.type,
            "reason": note.reason,
            "message": note.message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": _stamp(now),
            "lastTimestamp": _stamp(now),
            "count": 1,
        }

    def _bump(self, live: Json, note: EventNote, occurrence: str, now: datetime) -> Json | None:
        """The merge patch that counts this occurrence on ``live``; None if it already is."""
        meta = live.get("metadata") or {}
        seen = ((meta.get("annotations") or {}).get(OCCURRENCES) or "").split()
        if occurrence in seen:
            return None
        last = _parsed(live.get("lastTimestamp")) or _parsed(live.get("firstTimestamp"))
        fresh = last is None or now - last > WINDOW
        changes: Json = {
            # The version read: a concurrent bump makes this 409, and it is counted again.
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "annotations": {OCCURRENCES: " ".join([*seen, occurrence][-OCCURRENCES_KEPT:])},
            },
            "count": 1 if fresh else int(live.get("count") or 1) + 1,
            "lastTimestamp": _stamp(now),
            "message": note.message,
            "type": note.type,
        }
        if fresh:
            changes["firstTimestamp"] = _stamp(now)
        return changes


_RECORDERS: dict[str, Recorder] = {}


def recorder(owner: Owner) -> Recorder:
    """The process's recorder for ``owner``'s operator (its rate limits live there)."""
    found = _RECORDERS.get(owner.operator)
    if found is None:
        found = _RECORDERS[owner.operator] = Recorder(owner, RateLimit())
    return found
