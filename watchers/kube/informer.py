"""List and watch one kind of object in a thread, and hand the events to asyncio.

Why a thread: the official client's watch is a blocking generator. One thread per watched
resource reads it and passes each event to a thread-safe ``sink`` (the watcher puts it on
its asyncio queue), so the event loop never blocks on the network.

The protocol is Kubernetes' own:

* **List, then watch from the list's resourceVersion.** A full list is delivered as one
  ``RELISTED`` event holding every object, so the consumer can also notice what is gone.
* **Resume.** Given ``resume_from`` (a checkpointed resourceVersion), the first list is
  skipped and the watch replays every change since then, deletions included.
* **410 Gone.** When the server no longer has history that old, list again.
* **Bookmarks** keep the resourceVersion fresh on quiet resources, so a resume after a
  long quiet spell is still inside the server's window.
* **Transient errors** (connection reset, 5xx) resume from the last resourceVersion seen,
  with a capped backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

logger = logging.getLogger(__name__)

#: Objects per page of a list.
PAGE_SIZE = 500
#: Longest pause between two failed attempts, in seconds.
MAX_BACKOFF_S = 10.0

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
RELISTED = "RELISTED"


@dataclass(frozen=True)
class WatchEvent:
    """One change, or one complete list.

    Attributes:
        stream: the informer's name (``canaries``, ``deployments``).
        type: ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK`` or ``RELISTED``.
        resource_version: the resourceVersion to resume from once this is handled.
        obj: the object (raw JSON) for a change; ``None`` otherwise.
        objects: every object, for ``RELISTED``.
    """

    stream: str
    type: str
    resource_version: str
    obj: dict[str, Any] | None = None
    objects: tuple[dict[str, Any], ...] = ()


class Informer:
    """List+watch of one resource, run in a daemon thread.

    Args:
        name: the stream name put in every event.
        list_call: the client's list function (``list_deployment_for_all_namespaces``...).
        args: positional arguments of ``list_call`` (group, version, plural...).
        sink: receives every event, from the informer's thread.
        timeout_s: server-side timeout of one watch request (the watch is then resumed).
        resume_from: a resourceVersion to resume from instead of listing first.
    """

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        args: tuple[Any, ...] = (),
        *,
        sink: Callable[[WatchEvent], None],
        timeout_s: int = 300,
        resume_from: str | None = None,
    ) -> None:
        self.name = name
        self._list_call = list_call
        self._args = args
        self._sink = sink
        self._timeout_s = timeout_s
        self._resource_version = resume_from or None
        self._stopped = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None
        #: Lists done (first one included) and 410s answered by a list; for tests and logs.
        self.lists = 0
        self.gone = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop soon: end the current watch request and let the thread exit."""
        self._stopped.set()
        current = self._watch
        if current is not None:
            current.stop()
            response = getattr(current, "_resp", None)
            if response is not None:
                try:
                    response.close()  # unblocks the read; the thread sees _stopped and exits
                except Exception:  # pragma: no cover - best effort on shutdown
                    logger.debug("closing the %s watch failed", self.name, exc_info=True)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                if not self._resource_version:
                    self._relist()
                self._watch_once()
                failures = 0
            except client.ApiException as error:
                if error.status == 410:
                    self.gone += 1
                    logger.info("%s: resourceVersion too old (410 Gone); listing again", self.name)
                    self._resource_version = None
                    continue
                failures += 1
                self._pause(failures, f"API error {error.status} {error.reason}")
            except Exception as error:
                if self._stopped.is_set():
                    break
                failures += 1
                self._pause(failures, f"{type(error).__name__}: {error}")

    def _pause(self, failures: int, reason: str) -> None:
        delay = min(MAX_BACKOFF_S, 0.2 * 2 ** min(failures, 8))
        logger.warning("%s watch failed (%s); retrying in %.1fs", self.name, reason, delay)
        self._stopped.wait(delay)

    def _relist(self) -> None:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            response = self._list_call(*self._args, **kwargs)
            page = json.loads(response.data)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
        version = str(metadata.get("resourceVersion") or "")
        self.lists += 1
        self._resource_version = version
        self._emit(WatchEvent(self.name, RELISTED, version, objects=tuple(items)))

    def _watch_once(self) -> None:
        current = watch.Watch()
        self._watch = current
        try:
            stream = current.stream(
                self._list_call,
                *self._args,
                resource_version=self._resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._timeout_s,
                _request_timeout=self._timeout_s + 30,
                deserialize=False,
            )
            for event in stream:
                if self._stopped.is_set():
                    return
                kind = str(event.get("type"))
                obj: dict[str, Any] = event.get("object") or {}
                version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if version:
                    self._resource_version = version
                if kind == BOOKMARK:
                    self._emit(WatchEvent(self.name, BOOKMARK, version))
                elif kind in (ADDED, MODIFIED, DELETED):
                    self._emit(WatchEvent(self.name, kind, version, obj=obj))
        finally:
            self._watch = None

    def _emit(self, event: WatchEvent) -> None:
        if not self._stopped.is_set():
            self._sink(event)
