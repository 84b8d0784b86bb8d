"""Fixtures of the watcher tests: the Canary CRD installed, Temporal clients and workers.

The cluster itself (``dev_cluster``, ``namespace``, ``kube_api``, ...) comes from the
``tests.fixtures.cluster`` plugin. Two kinds of worker serve the "canary" workflow type, on
separate task queues: the real canary operator (``canary_queue``), and a stand-in that only
records events (``standin_queue``, see ``tests/watchers/standin.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from temporalio.client import Client

from devcluster.crds import install_autopilot_crds
from service.temporal import connect
from tests.fixtures.cluster import worker_env
from tests.watchers.standin import standin_worker
from tests.watchers.support import Cluster, terminate_all


@pytest.fixture(scope="session")
def canary_crd(kube_api: client.ApiClient) -> list[str]:
    """The generated Canary CRD, applied to the session's cluster (idempotent)."""
    return install_autopilot_crds(kube_api)


@pytest.fixture
def cluster(kube_api: client.ApiClient, namespace: str, canary_crd: list[str]) -> Cluster:
    """Cluster operations on the test's own namespace."""
    return Cluster(kube_api, namespace)


@pytest.fixture(scope="session")
async def temporal(temporal_address: str) -> Client:
    """A client of the cluster's Temporal, connected as the watchers connect."""
    return await connect(temporal_address)


@pytest.fixture(scope="session")
async def standin_queue(temporal: Client) -> AsyncIterator[str]:
    """A task queue served by the stand-in canary workflow."""
    queue = f"watchers-standin-{uuid.uuid4().hex[:8]}"
    async with standin_worker(temporal, queue):
        yield queue


@pytest.fixture(scope="session")
def canary_worker_env(kubeconfig_path: Path, prometheus_url: str) -> Iterator[None]:
    """Point the canary activities at the session's cluster, as the worker's env would."""
    with worker_env({"KUBECONFIG": str(kubeconfig_path), "PROMETHEUS_URL": prometheus_url}):
        yield


@pytest.fixture(scope="session")
async def canary_queue(temporal: Client, canary_worker_env: None) -> AsyncIterator[str]:
    """A task queue served by the real canary operator (workflow and activities)."""
    from activities.canary import ACTIVITIES
    from worker_main import make_worker
    from workflows.canary import CanaryWorkflow

    queue = f"watchers-canary-{uuid.uuid4().hex[:8]}"
    async with make_worker(temporal, queue, [CanaryWorkflow], ACTIVITIES):
        yield queue


@pytest.fixture
async def cleanup(temporal: Client, namespace: str) -> AsyncIterator[None]:
    """Terminate the test namespace's canary workflows afterwards."""
    yield
    await terminate_all(temporal, namespace)
