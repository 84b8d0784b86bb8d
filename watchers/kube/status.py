"""Mirror each canary workflow into its ``Canary``'s status, so ``kubectl get canaries`` shows it.

Why polling visibility: one listing per interval (:class:`~watchers.visibility.WorkflowDirectory`)
tells which workflows changed: their state, weight or ``CanaryDataHash``, which the workflow
upserts whenever its data changes (a failed pre-rollout hook, an analysis, an approval, a new
message), also while it stays in one state. Only those are asked for their full status (the
``status`` query: failed checks, message, last transition), plus each one every
``status_refresh_s`` for what a listing cannot see (a run recorded before the hash existed).
So the cost per interval is one listing plus one query per rollout that changed - not one per
rollout - and the Canary's status is at most one ``status_interval_s`` behind its workflow.

The workflow is the source of truth; the status is a view. A workflow that cannot answer
(no worker yet) is shown from its search attributes alone; one that failed or was
terminated shows ``Failed`` with Temporal's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from models.canary import flagger_phase
from models.canary_watch import PENDING_PHASE
from models.operator import STATUS_QUERY, OperatorStatus
from service.settings import WatchersSettings
from watchers.kube.canary_api import CanaryApi
from watchers.kube.canary_metrics import CanaryMetrics
from watchers.kube.index import CanaryIndex
from watchers.kube.objects import CanaryObject
from watchers.visibility import WorkflowDirectory, WorkflowSummary

logger = logging.getLogger(__name__)

#: How long one status query may take.
QUERY_TIMEOUT = timedelta(seconds=5)
#: Longest message kept in the status.
MAX_MESSAGE = 1024

_UNSUCCESSFUL = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "was terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
    WorkflowExecutionStatus.CANCELED: "was cancelled",
}


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mirror_fields(
    summary: WorkflowSummary, status: OperatorStatus | None, failure: str | None = None
) -> dict[str, Any]:
    """The status fields (wire names) that show one workflow run.

    Args:
        summary: the run as visibility lists it.
        status: the answer of its ``status`` query, when it gave one.
        failure: why the run failed, when it did.
    """
    state = status.state if status is not None else summary.state
    data = status.data if status is not None else {}
    fields: dict[str, Any] = {
        "workflowId": summary.workflow_id,
        "runId": summary.run_id,
        "state": state,
        "phase": flagger_phase(state) if state else PENDING_PHASE,
        "canaryWeight": data.get("canary_weight", summary.canary_weight),
    }
    if status is not None:
        last = status.transitions[-1].at if status.transitions else status.since
        fields.update(
            {
                "failedChecks": data.get("failed_checks"),
                "iterations": data.get("iterations"),
                "lastTransitionTime": _timestamp(last),
                "message": (data.get("failure") or data.get("message") or status.error or "")[
                    :MAX_MESSAGE
                ],
            }
        )
    elif state is None:
        fields["message"] = "workflow started; waiting for a worker"
    if summary.status in _UNSUCCESSFUL:
        fields["phase"] = "Failed"
        why = f"workflow {_UNSUCCESSFUL[summary.status]}"
        fields["message"] = f"{why}: {failure}"[:MAX_MESSAGE] if failure else why
        if summary.close_time is not None:
            fields["lastTransitionTime"] = _timestamp(summary.close_time)
    return fields


class StatusMirror:
    """Keeps every Canary's status in step with its workflow.

    Args:
        settings: the intervals.
        client: the Temporal client (queries).
        index: the Canaries (from the Kubernetes watcher).
        canaries: writes the status subresource.
        directory: the shared visibility listing; refreshed here.
        metrics: the canary metrics to feed with every status mirrored (none: not kept).
    """

    def __init__(
        self,
        settings: WatchersSettings,
        client: Client,
        index: CanaryIndex,
        canaries: CanaryApi,
        directory: WorkflowDirectory,
        metrics: CanaryMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = client
        self.index = index
        self.canaries = canaries
        self.directory = directory
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._queried: dict[str, float] = {}
        #: Status queries sent, for tests and benchmarks.
        self.queries = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``status_interval_s`` until ``stop`` is set; show the metrics meanwhile."""
        if self.metrics is not None:
            self.metrics.lead(self.index)
        try:
            while not stop.is_set():
                try:
                    await self.sync_once()
                except Exception:
                    logger.warning("status sync failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.status_interval_s)
        finally:
            if self.metrics is not None:
                self.metrics.resign(self.index)

    async def sync_once(self) -> None:
        """One listing, then a query and a status write for each workflow that moved."""
        await self.directory.ensure_fresh(self.settings.status_interval_s / 2)
        now = time.monotonic()
        jobs = []
        for canary in self.index:
            if not canary.status.workflow_id or canary.deleting:
                continue  # nothing delivered yet: the watcher writes the first status
            summary = self.directory.get(canary.status.workflow_id)
            if summary is None:
                continue
            fingerprint = (
                summary.run_id,
                summary.status,
                summary.state,
                summary.canary_weight,
                summary.data_hash,
            )
            workflow_id = summary.workflow_id
            stale = now - self._queried.get(workflow_id, -1e9) >= self.settings.status_refresh_s
            if fingerprint != self._seen.get(workflow_id) or stale:
                self._seen[workflow_id] = fingerprint
                self._queried[workflow_id] = now
                jobs.append(self._mirror(canary, summary))
        if jobs:
            await asyncio.gather(*jobs)

    async def _mirror(self, canary: CanaryObject, summary: WorkflowSummary) -> None:
        handle = self.client.get_workflow_handle(summary.workflow_id, run_id=summary.run_id)
        status: OperatorStatus | None = None
        failure: str | None = None
        if summary.status in _UNSUCCESSFUL:
            try:
                await handle.result(rpc_timeout=QUERY_TIMEOUT)
            except WorkflowFailureError as error:
                failure = str(error.cause) if error.cause else str(error)
            except Exception:
                logger.debug("no result for %s", summary.workflow_id, exc_info=True)
        else:
            try:
                self.queries += 1
                status = await handle.query(
                    STATUS_QUERY, result_type=OperatorStatus, rpc_timeout=QUERY_TIMEOUT
                )
            except Exception as error:
                # No worker yet, most likely: show what visibility knows; the query is
                # asked again when the state changes or at the next refresh.
                logger.debug("status query of %s failed: %s", summary.workflow_id, error)
        fields = mirror_fields(summary, status, failure)
        if self.metrics is not None:
            self.metrics.observe(canary, fields, status)
        current = canary.status.model_dump(by_alias=True, mode="json")
        changed = {name: value for name, value in fields.items() if current.get(name) != value}
        if changed:
            try:
                await self.canaries.patch_status(canary, changed)
            except Exception:
                self._seen.pop(summary.workflow_id, None)  # try again next interval
                raise
