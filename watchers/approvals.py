"""Hands each ``Approval`` object to its workflow as a command, and writes what came of it.

Why a watcher does this: an ``Approval`` is how a human command carries an identity the API
server authenticated (see :mod:`models.approvals`). The watcher only observes the object and
signals the workflow (a Temporal update is a signal with an answer); the workflow's validator
decides, exactly as for a command from the CLI. The one write is the Approval's own
``status``, so ``kubectl get approvals`` and the CLI see the outcome.

Exactly once: the update ID is derived from the object's UID, and Temporal keeps one outcome
per update ID in a run, so an Approval seen again (a relist, a restarted or second watcher)
gets the first outcome back instead of commanding twice. ``status.phase`` says which
Approvals are done; only those not final are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from pydantic import ValidationError
from temporalio.client import Client

from models.approvals import (
    APPLIED,
    APPROVAL_GROUP,
    APPROVAL_PLURAL,
    APPROVAL_VERSION,
    EXPIRED,
    FINAL_PHASES,
    QUEUED,
    REFUSED,
    SUPERSEDED,
    ApprovalSpec,
    ApprovalStatus,
    update_id_for,
    workflow_id_for,
)
from models.errors import describe
from models.operator import CommandReceipt, CommandRequest
from service import commands
from service.settings import WatchersSettings
from watchers.kube.canary_api import FIELD_MANAGER
from watchers.kube.client import KubeCalls
from watchers.kube.informer import DELETED, RELISTED, Informer, WatchEvent
from watchers.senses.resources import list_call

logger = logging.getLogger(__name__)

_MERGE_PATCH = "application/merge-patch+json"


class ApprovalWatcher:
    """Watches Approvals in the watched namespaces and commands their workflows.

    Args:
        settings: the namespaces, the watch timeout, the largest age of an Approval.
        temporal: a client with the pydantic data converter (the delivery's).
        calls: runs the blocking Kubernetes calls, bounded.
    """

    def __init__(self, settings: WatchersSettings, temporal: Client, calls: KubeCalls) -> None:
        self.settings = settings
        self.temporal = temporal
        self.calls = calls
        self.custom = client.CustomObjectsApi(calls.api)
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._informers: list[Informer] = []
        #: Approvals being handled, by UID (each has one task until its outcome is written).
        self._handling: dict[str, asyncio.Task[None]] = {}
        #: Outcomes written, for tests and logs.
        self.handled = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; Approvals in flight are left to the next watcher."""
        loop = asyncio.get_running_loop()

        def sink(event: WatchEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: we are stopping
                loop.call_soon_threadsafe(self._queue.put_nowait, event)

        namespaces: list[str | None] = list(self.settings.namespaces) or [None]
        for namespace in namespaces:
            name = f"approvals.{namespace}" if namespace else "approvals"
            informer = Informer(
                name,
                list_call(
                    self.calls.api, APPROVAL_GROUP, APPROVAL_VERSION, APPROVAL_PLURAL, namespace
                ),
                sink=sink,
                timeout_s=self.settings.watch_timeout_s,
                not_found_hint="is the Approval CRD installed? (deploy/crds/approval.yaml)",
            )
            self._informers.append(informer)
            informer.start()
        stopper = asyncio.create_task(self._stop_on(stop))
        try:
            while (event := await self._queue.get()) is not None:
                objects = event.objects if event.type == RELISTED else [event.obj]
                if event.type == DELETED:
                    continue
                for obj in objects:
                    if obj is not None:
                        self._consider(obj)
        finally:
            stopper.cancel()
            for informer in self._informers:
                informer.stop()
            for task in self._handling.values():
                task.cancel()

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._queue.put_nowait(None)

    def _consider(self, obj: dict[str, Any]) -> None:
        """Start handling ``obj`` unless it is done or already being handled."""
        metadata = obj.get("metadata") or {}
        uid = str(metadata.get("uid") or "")
        phase = (obj.get("status") or {}).get("phase")
        if not uid or phase in FINAL_PHASES or uid in self._handling:
            return
        task = asyncio.create_task(self._handle(obj))
        self._handling[uid] = task
        task.add_done_callback(lambda _t: self._handling.pop(uid, None))

    async def _handle(self, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
        try:
            spec = ApprovalSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            await self._write(
                namespace, name, ApprovalStatus(phase=REFUSED, message=describe(error))
            )
            return
        workflow_id = workflow_id_for(spec, namespace)
        status = ApprovalStatus(workflow_id=workflow_id)
        if not spec.requested_by:
            status.phase = REFUSED
            status.message = (
                "no authenticated requester: the admission policy that stamps spec.requestedBy "
                "is not installed (deploy/kubernetes/approval-policies.yaml)"
            )
            await self._write(namespace, name, status)
            return
        phase = (obj.get("status") or {}).get("phase")
        if phase != QUEUED and self._too_old(metadata.get("creationTimestamp")):
            status.phase = EXPIRED
            status.message = (
                f"older than {self.settings.approvals_max_age_s:g}s when the watcher first saw "
                "it; not sent: create a new Approval"
            )
            await self._write(namespace, name, status)
            return
        request = CommandRequest(
            command=spec.command,
            by=spec.requested_by,
            reason=spec.reason,
            via="kubernetes",
            groups=spec.requested_groups,
        )
        try:
            handle = await commands.running_handle(self.temporal, workflow_id)
            update = await commands.accept(handle, request, update_id=update_id_for(uid))
            if phase != QUEUED:
                status.phase = QUEUED
                status.message = f"{spec.command} accepted; the machine handles it next"
                await self._write(namespace, name, status)
            receipt = await commands.outcome(update, request, wait=None)
        except commands.NotAnswered as error:
            # Leave it Pending: the next relist (or a restarted watcher) sends it again.
            logger.warning("approval %s/%s: %s", namespace, name, error)
            return
        except commands.CommandError as error:
            status.phase = REFUSED
            status.message = str(error)
            await self._write(namespace, name, status)
            return
        if receipt is not None:
            await self._write(namespace, name, _outcome(status, receipt))

    def _too_old(self, created: str | None) -> bool:
        if not created:
            return False
        born = datetime.fromisoformat(created.replace("Z", "+00:00"))
        return (datetime.now(UTC) - born).total_seconds() > self.settings.approvals_max_age_s

    async def _write(self, namespace: str, name: str, status: ApprovalStatus) -> None:
        """Merge ``status`` into the Approval (gone: nothing to say it to)."""
        if status.phase in FINAL_PHASES and status.handled_at is None:
            status.handled_at = datetime.now(UTC)
        fields = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            await self.calls(
                self.custom.patch_namespaced_custom_object_status,
                APPROVAL_GROUP,
                APPROVAL_VERSION,
                namespace,
                APPROVAL_PLURAL,
                name,
                {"status": fields},
                field_manager=FIELD_MANAGER,
                _content_type=_MERGE_PATCH,
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
            return
        if status.phase in FINAL_PHASES:
            self.handled += 1
            logger.info("approval %s/%s: %s %s", namespace, name, status.phase, status.message)


def _outcome(status: ApprovalStatus, receipt: CommandReceipt) -> ApprovalStatus:
    """The final status of an Approval its workflow handled."""
    applied = receipt.outcome == "applied"
    message = (
        f"{receipt.command} by {receipt.by}: {receipt.state} → {receipt.now}"
        if applied
        else f"{receipt.command} changed nothing: {receipt.detail or 'the machine had moved on'}"
    )
    return status.model_copy(
        update={
            "phase": APPLIED if applied else SUPERSEDED,
            "message": message,
            "state": receipt.state,
            "now": receipt.now,
        }
    )
