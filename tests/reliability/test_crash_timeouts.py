"""The timeouts and limits that bound what a worker crash costs are the ones in force.

``docs/operations.md`` tells the figures these values give, and why the workflow task
timeout is 5 s and a worker runs 4 workflow tasks at once.
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
        assert config.default_workflow_task_timeout.ToTimedelta() == timedelta(seconds=5)
    finally:
        await handle.terminate("test over")


def test_the_worker_runs_at_most_four_workflow_tasks_at_once_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.settings import WorkerSettings
    from worker_main import worker_options

    monkeypatch.delenv("AUTOPILOT_MAX_CONCURRENT_WORKFLOW_TASKS", raising=False)
    assert worker_options(WorkerSettings())["max_concurrent_workflow_tasks"] == 4
    monkeypatch.setenv("AUTOPILOT_MAX_CONCURRENT_WORKFLOW_TASKS", "3")
    assert worker_options(WorkerSettings())["max_concurrent_workflow_tasks"] == 3


def test_a_worker_refuses_fewer_than_two_workflow_tasks_at_once_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from service.settings import WorkerSettings

    monkeypatch.setenv("AUTOPILOT_MAX_CONCURRENT_WORKFLOW_TASKS", "1")
    with pytest.raises(ValidationError, match="max_concurrent_workflow_tasks"):
        WorkerSettings()


def test_a_run_continues_as_new_by_default_well_before_its_replay_gets_slow() -> None:
    from models.operator import EngineSettings

    # About 0.65 ms an event to replay on 2 cores: 1,024 events is well under a second.
    assert EngineSettings().history_event_limit == 1024
