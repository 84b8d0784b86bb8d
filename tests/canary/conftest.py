"""Fixtures of the canary tests: activities pointed at the session's cluster, and a worker.

The cluster itself (``dev_cluster``, ``namespace``, ``kube_api``, ...) comes from the
``tests.fixtures.cluster`` plugin.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.canary import ACTIVITIES
from tests.canary.e2e import Rollouts
from tests.fixtures.cluster import worker_env
from worker_main import make_worker
from workflows.canary import CanaryWorkflow
from workflows.rollout_slots import RolloutSlotsWorkflow


@pytest.fixture(scope="session")
def canary_env(kubeconfig_path: Path, prometheus_url: str) -> Iterator[None]:
    """Point the canary activities at the session's cluster (as the worker's env would)."""
    with worker_env({"KUBECONFIG": str(kubeconfig_path), "PROMETHEUS_URL": prometheus_url}):
        yield


@pytest.fixture(scope="session")
async def rollouts(temporal_address: str, canary_env: None) -> AsyncIterator[Rollouts]:
    """A worker for the canary operator, in this process, on the cluster's Temporal."""
    temporal = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    task_queue = f"canary-tests-{uuid.uuid4().hex[:8]}"
    worker = make_worker(temporal, task_queue, [CanaryWorkflow, RolloutSlotsWorkflow], ACTIVITIES)
    async with worker:
        yield Rollouts(temporal, task_queue)
