"""The timeouts that bound what a worker crash costs are the ones every start sets.

``docs/operations.md`` tells the figures these values give, and why the workflow task
timeout stays at 10 s.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.operator import OperatorInput, Target
from service.starts import start_operator

pytestmark = pytest.mark.temporal


async def test_a_started_rollout_sets_the_workflow_task_timeout_the_docs_tell(
    dev_server_env: WorkflowEnvironment,
) -> None:
    target = Target(namespace=f"t-{uuid.uuid4().hex[:6]}", name="web")
    handle = await start_operator(
        dev_server_env.client,
        "canary",
        OperatorInput(target=target, spec={}),
        task_queue=f"nobody-{uuid.uuid4().hex[:6]}",  # no worker: only the start is read
        started_by="test",
    )
    try:
        described = await handle.describe()
        config = described.raw_description.execution_config
        assert config.default_workflow_task_timeout.ToTimedelta() == timedelta(seconds=10)
    finally:
        await handle.terminate("test over")
