"""Fixtures of the quarantine tests that need the local cluster.

The cluster itself (``dev_cluster``, ``namespace``, ``kube_api``, ...) comes from the
``tests.fixtures.cluster`` plugin; the time-skipping server from ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from activities import kube
from activities.quarantine import ACTIVITIES
from activities.quarantine_git import ACTIVITIES as GIT_ACTIVITIES
from service.temporal import connect
from worker_main import make_worker
from workflows.quarantine import QuarantineWorkflow


@pytest.fixture(scope="session")
def quarantine_kube(kubeconfig_path: Path) -> Iterator[None]:
    """Point the quarantine workers at the session's cluster, as the worker's env would."""
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig_path)
    kube.api_client.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved
        kube.api_client.cache_clear()


@dataclass(frozen=True)
class ClusterWorker:
    """A running worker: the client it polls with and its task queue."""

    client: Client
    task_queue: str


@pytest.fixture(scope="session")
async def cluster_worker(
    temporal_address: str, quarantine_kube: None
) -> AsyncIterator[ClusterWorker]:
    """The real quarantine workflow and workers, in this process, on the cluster's Temporal."""
    temporal = await connect(temporal_address)
    task_queue = f"quarantine-e2e-{uuid.uuid4().hex[:8]}"
    async with make_worker(
        temporal, task_queue, [QuarantineWorkflow], [*ACTIVITIES, *GIT_ACTIVITIES]
    ):
        yield ClusterWorker(temporal, task_queue)
