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
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

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
ERROR = "ERROR"


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
        not_found_hint: what to tell the operator when the resource is not served (404).
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
        not_found_hint: str = "",
    ) -> None:
        self.name = name
        self.not_found_hint = not_found_hint
        self._list_call = list_call
        self._args = args
        self._sink = sink
        self._timeout_s = timeout_s
        self._resource_version = resume_from or None
        self._stopped = threading.Event()
        self._response: Any = None
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
        response = self._response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            # Shut the socket down rather than close the response: closing a TLS stream
            # waits for the lock the reading thread holds; a shutdown wakes that read up.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                logger.debug("shutting the %s watch down failed", self.name, exc_info=True)

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
                reason = f"API error {error.status} {error.reason}"
                if error.status == 404 and self.not_found_hint:
                    reason += f" ({self.not_found_hint})"
                self._pause(failures, reason)
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
        """One watch request, read line by line until the server ends it.

        The response is read here rather than through ``kubernetes.watch.Watch``: we need
        the raw JSON (parsing Deployments into models costs more than deciding), and we
        answer ERROR events (410 Gone) ourselves.
        """
        if self._stopped.is_set():
            return
        response = self._list_call(
            *self._args,
            watch=True,
            resource_version=self._resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._timeout_s,
            _request_timeout=self._timeout_s + 30,
            _preload_content=False,
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if self._stopped.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                kind = str(event.get("type"))
                obj: dict[str, Any] = event.get("object") or {}
                if kind == ERROR:
                    raise client.ApiException(
                        status=int(obj.get("code") or 500), reason=str(obj.get("message") or "")
                    )
                version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if version:
                    self._resource_version = version
                if kind == BOOKMARK:
                    self._emit(WatchEvent(self.name, BOOKMARK, version))
                elif kind in (ADDED, MODIFIED, DELETED):
                    self._emit(WatchEvent(self.name, kind, version, obj=obj))
        finally:
            self._response = None
            response.release_conn()

    def _emit(self, event: WatchEvent) -> None:
        if not self._stopped.is_set():
            self._sink(event)
