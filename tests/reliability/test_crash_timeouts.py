"""The timeouts that bound what a worker crash costs are the ones every start sets.

Temporal's defaults would make a kill cost 10 s for a workflow task lost in flight on the
dead worker; ``docs/operations.md`` tells the figures these values give.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.operator import OperatorInput, Target
from service.starts import start_operator

pytestmark = pytest.mark.temporal


async def test_a_started_rollout_hands_a_lost_workflow_task_on_after_4_s_not_10(
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
        assert config.default_workflow_task_timeout.ToTimedelta() == timedelta(seconds=4)
    finally:
        await handle.terminate("test over")
