"""What Temporal's visibility store says about every canary workflow, read once per interval.

Why one listing: the status mirror needs each workflow's state and weight, and the
Prometheus watcher needs to know which rollouts are in a state that takes metric samples.
Both read this directory, which costs **one** ``ListWorkflowExecutions`` (paged) per
interval however many canaries there are - the engine upserts ``AutopilotState``,
``CanaryWeight`` and ``CanaryDataHash`` as search attributes for exactly this - instead of one
query per workflow.

The first listing also looks back a day for closed runs, so a rollout that finished while
no watcher ran still gets its final phase mirrored; later listings look back one interval
plus a margin.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from service.search_attributes import KEY_DATA_HASH, KEY_STATE, KEY_WEIGHT

#: How far back the first listing looks for closed runs.
FIRST_LOOKBACK = timedelta(days=1)
#: Overlap between two listings, against clock skew and visibility lag.
MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class WorkflowSummary:
    """One workflow run as visibility lists it."""

    workflow_id: str
    run_id: str
    status: WorkflowExecutionStatus
    state: str | None
    canary_weight: int | None
    start_time: datetime
    close_time: datetime | None
    #: Changes whenever the workflow's data does (None for runs recorded before it existed).
    data_hash: str | None = None

    @property
    def running(self) -> bool:
        """Whether this run is still running."""
        return self.status == WorkflowExecutionStatus.RUNNING

    @classmethod
    def of(cls, execution: WorkflowExecution) -> WorkflowSummary:
        """Summarise a listed execution."""
        attributes = execution.typed_search_attributes
        return cls(
            workflow_id=execution.id,
            run_id=execution.run_id,
            status=execution.status or WorkflowExecutionStatus.RUNNING,
            state=attributes.get(KEY_STATE),
            canary_weight=attributes.get(KEY_WEIGHT),
            start_time=execution.start_time,
            close_time=execution.close_time,
            data_hash=attributes.get(KEY_DATA_HASH),
        )

    def newer_than(self, other: WorkflowSummary) -> bool:
        """A running run wins; otherwise the one started last."""
        if self.running != other.running:
            return self.running
        return self.start_time >= other.start_time


class WorkflowDirectory:
    """The latest run of every workflow of one operator.

    Args:
        client: the Temporal client.
        operator: the workflow type to list.
    """

    def __init__(self, client: Client, operator: str = "canary") -> None:
        self.client = client
        self.operator = operator
        self._runs: dict[str, WorkflowSummary] = {}
        self._since: datetime | None = None
        self._lock = asyncio.Lock()
        self._refreshed = -1e9
        #: Listings made (each is one paged ``ListWorkflowExecutions``), for tests and benchmarks.
        self.listings = 0

    def get(self, workflow_id: str) -> WorkflowSummary | None:
        """The latest known run of ``workflow_id``."""
        return self._runs.get(workflow_id)

    def running(self) -> list[WorkflowSummary]:
        """Every workflow whose latest run is running."""
        return [run for run in self._runs.values() if run.running]

    def query(self, now: datetime) -> str:
        """The visibility query of the next listing."""
        since = self._since or now - FIRST_LOOKBACK
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"WorkflowType = '{self.operator}' "
            f"AND (ExecutionStatus = 'Running' OR CloseTime > '{stamp}')"
        )

    async def ensure_fresh(self, max_age_s: float) -> dict[str, WorkflowSummary]:
        """List again unless a listing is younger than ``max_age_s`` (shared by readers)."""
        async with self._lock:
            if time.monotonic() - self._refreshed >= max_age_s:
                await self._refresh()
            return dict(self._runs)

    async def refresh(self) -> dict[str, WorkflowSummary]:
        """List again now; returns the directory (workflow ID -> latest run)."""
        async with self._lock:
            await self._refresh()
            return dict(self._runs)

    async def _refresh(self) -> None:
        now = datetime.now(UTC)
        listed: dict[str, WorkflowSummary] = {}
        iterator = self.client.list_workflows(self.query(now), page_size=1000)
        async for execution in iterator:
            summary = WorkflowSummary.of(execution)
            known = listed.get(summary.workflow_id)
            if known is None or summary.newer_than(known):
                listed[summary.workflow_id] = summary
        self.listings += 1
        # Runs no longer running and outside the window keep their last known summary.
        for workflow_id, summary in listed.items():
            known = self._runs.get(workflow_id)
            if known is None or summary.newer_than(known) or known.run_id == summary.run_id:
                self._runs[workflow_id] = summary
        for workflow_id, known in list(self._runs.items()):
            if known.running and workflow_id not in listed:
                # It closed before our window and we missed it: drop it; describe() is
                # not worth it, the next start of this workflow is listed again.
                del self._runs[workflow_id]
        self._since = now - MARGIN
        self._refreshed = time.monotonic()
