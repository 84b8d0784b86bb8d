"""The quarantine machine on the Temporal dev server, with recording workers.

What is checked is the engine running the quarantine definition: which workers run on
entering a state, what the alerts and commands do, and (on a time-skipping server of the
test's own) that four simulated hours escalate.
Events arrive the way the Alertmanager webhook delivers them (``tests.quarantine.alerts``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.operator import OperatorInput, OperatorStatus, Target, workflow_id
from tests.engine.helpers import command, status, wait_for
from tests.operators.support import stop
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.pull_requests import deliver_pull_request, pull_request_event
from tests.quarantine.recording_activities import (
    GITOPS,
    POLLED,
    RECORD_PR,
    RECORDING_ACTIVITIES,
    RELEASE_PR,
    calls_for,
)
from worker_main import make_worker
from workflows.quarantine import QuarantineWorkflow

pytestmark = pytest.mark.temporal

NAMESPACE = "shop"
ISOLATION = ["apply_deny_policy", "snapshot_evidence", "label_workload", "record_isolation"]


def recording_worker(env: WorkflowEnvironment) -> Worker:
    """A quarantine worker whose activities record their calls instead of touching Kubernetes."""
    task_queue = f"quarantine-{uuid.uuid4().hex[:6]}"
    return make_worker(env.client, task_queue, [QuarantineWorkflow], RECORDING_ACTIVITIES)


@pytest.fixture(scope="module")
async def module_worker(dev_server_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    """One worker for the module: it outlives every test's workflows until they are stopped."""
    async with recording_worker(dev_server_env) as running:
        yield running


class Quarantines:
    """Starts quarantines the way the webhook does; terminates what a test leaves running."""

    def __init__(self, worker: Worker) -> None:
        self.client = worker.client
        self.task_queue = worker.task_queue
        self.handles: list[WorkflowHandle[Any, OperatorStatus]] = []

    def handle(self, name: str) -> WorkflowHandle[Any, OperatorStatus]:
        handle = self.client.get_workflow_handle(
            workflow_id("quarantine", NAMESPACE, name), result_type=OperatorStatus
        )
        self.handles.append(handle)
        return handle

    async def alert(self, name: str, spec: dict[str, Any] | None = None, **fields: Any):
        """Deliver one Alertmanager alert for ``shop/<name>``; return the workflow's handle."""
        await deliver(self.client, self.task_queue, alert(NAMESPACE, name, **fields), spec=spec)
        return self.handle(name)

    async def isolated(
        self, name: str, spec: dict[str, Any] | None = None, **fields: Any
    ) -> tuple[WorkflowHandle, OperatorStatus]:
        """A workload alerted on, once Isolated with its workers' results recorded."""
        handle = await self.alert(name, spec, **fields)
        current = await wait_for(handle, "Isolated")
        for _ in range(200):
            if current.data["evidence"]:
                return handle, current
            await asyncio.sleep(0.05)
            current = await status(handle)
        raise AssertionError(f"workers' results never recorded: {current.data}")


@pytest.fixture
async def quarantines(module_worker: Worker) -> AsyncIterator[Quarantines]:
    started = Quarantines(module_worker)
    yield started
    for handle in started.handles:
        await stop(handle)


@pytest.fixture
async def skipping_quarantines(
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[Quarantines]:
    """Quarantines on the test's own time-skipping server, for timers that must jump."""
    async with recording_worker(time_skipping_env) as running:
        started = Quarantines(running)
        yield started
        for handle in started.handles:
            await stop(handle)


def moves(current: OperatorStatus) -> list[tuple[str, str, str]]:
    """The transitions that changed state (internal ones only record a worker's result)."""
    return [(t.source, t.target, t.event) for t in current.transitions if t.source != t.target]


def workload() -> str:
    return f"web-{uuid.uuid4().hex[:8]}"


async def test_a_firing_alert_isolates_the_workload_and_records_the_alert(quarantines):
    name = workload()
    _, current = await quarantines.isolated(name)

    assert calls_for(name) == ISOLATION
    assert moves(current) == [("Detected", "Isolated", "SecurityAlert")]
    first = current.data["alerts"][0]
    assert (first["alertname"], first["severity"]) == ("CryptoMinerDetected", "critical")
    assert current.data["policy"] == f"{name}-quarantine"
    assert current.data["evidence"] == f"{name}-quarantine-evidence"
    assert current.settled and not current.final
    assert current.accepted_commands == ["escalate", "pause", "release", "remediate"]
    assert "alert: **CryptoMinerDetected** (critical)" in current.details
    assert "isolated since:" in current.details
    assert current.timer_due is not None
    assert current.timer_due - current.since == timedelta(hours=4)


async def test_an_isolated_workload_is_escalated_four_simulated_hours_later(
    skipping_quarantines, time_skipping_env
):
    name = workload()
    handle, _ = await skipping_quarantines.isolated(name)

    await time_skipping_env.sleep(timedelta(hours=4, minutes=1))
    current = await wait_for(handle, "Escalated")
    for _ in range(200):
        if current.data["notified"]:
            break
        await asyncio.sleep(0.05)
        current = await status(handle)

    assert moves(current)[-1] == ("Isolated", "Escalated", "Timeout")
    isolated, escalated = (t for t in current.transitions if t.source != t.target)
    assert timedelta(hours=4) <= escalated.at - isolated.at < timedelta(hours=4, minutes=1)
    assert calls_for(name) == [*ISOLATION, "notify_security"]
    assert current.data["escalation_reason"] == "still isolated after 4h"
    assert current.data["notified"] == f"Kubernetes Event shop/{name}.q"
    assert current.accepted_commands == ["pause", "release", "remediate"]


async def test_release_lifts_the_quarantine_and_records_who_released_it(quarantines):
    name = workload()
    handle, _ = await quarantines.isolated(name)

    receipt = await command(handle, "release", by="sec-oncall", reason="false positive")
    assert (receipt.state, receipt.now, receipt.applied) == ("Isolated", "Released", True)
    result: OperatorStatus = await handle.result()

    assert result.state == "Released" and result.final and result.outcome == "succeeded"
    assert calls_for(name) == [*ISOLATION, "remove_deny_policy", "unlabel_workload"]
    assert (result.data["closed_by"], result.data["closed_reason"]) == (
        "sec-oncall",
        "false positive",
    )
    assert [(c.command, c.by) for c in result.commands] == [("release", "sec-oncall")]


async def test_release_before_any_alert_is_refused_naming_the_state(quarantines):
    name = workload()
    target = Target(namespace=NAMESPACE, name=name)
    await quarantines.client.start_workflow(
        "quarantine",
        OperatorInput(target=target),
        id=target.workflow_id("quarantine"),
        task_queue=quarantines.task_queue,
    )
    handle = quarantines.handle(name)
    await wait_for(handle, "Detected")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await command(handle, "release")

    message = str(refused.value.cause)
    assert "'release' is not accepted in state Detected" in message
    assert "accepted here: pause" in message
    assert (await status(handle)).state == "Detected"
    assert calls_for(name) == []


async def test_escalate_notifies_at_once_and_remediate_leaves_the_isolation_in_place(
    quarantines,
):
    name = workload()
    handle, _ = await quarantines.isolated(name)

    receipt = await command(handle, "escalate", by="bob", reason="customer data at risk")
    assert receipt.now == "Escalated"
    await command(handle, "remediate", by="sec-team", reason="image rebuilt")
    result: OperatorStatus = await handle.result()

    assert result.state == "Remediated"
    assert result.data["escalation_reason"] == "escalated by bob: customer data at risk"
    assert calls_for(name) == [*ISOLATION, "notify_security"]  # no removal: security owns it


async def test_a_workload_that_cannot_be_isolated_is_escalated_at_once(quarantines):
    name = f"unisolable-{uuid.uuid4().hex[:8]}"
    handle = await quarantines.alert(name)

    current = await wait_for(handle, "Escalated")

    assert calls_for(name) == ["apply_deny_policy", "notify_security"]
    assert moves(current) == [
        ("Detected", "Isolated", "SecurityAlert"),
        ("Isolated", "Escalated", "ActivityFailed"),
    ]
    assert current.data["escalation_reason"].startswith("isolation failed: nothing to isolate")
    assert current.data["policy"] is None
    assert "problem: isolation failed" in current.details


async def test_repeated_and_resolved_alerts_are_recorded_but_never_release(quarantines):
    name = workload()
    handle, _ = await quarantines.isolated(name)

    await quarantines.alert(name)  # Alertmanager's repeat: same event ID, dropped
    await quarantines.alert(name, alertname="PrivilegeEscalation", starts_at="2025-03-14T09:30:00Z")
    await quarantines.alert(name, status="resolved")
    await quarantines.alert(
        name, status="resolved", alertname="PrivilegeEscalation", starts_at="2025-03-14T09:30:00Z"
    )
    current = await status(handle)
    for _ in range(200):
        if all(a["resolved_at"] for a in current.data["alerts"]):
            break
        await asyncio.sleep(0.05)
        current = await status(handle)

    assert current.state == "Isolated"
    assert current.data["alerts_received"] == 2
    assert [a["alertname"] for a in current.data["alerts"]] == [
        "CryptoMinerDetected",
        "PrivilegeEscalation",
    ]
    assert "every alert has resolved; the workload stays isolated until released" in current.details
    assert calls_for(name) == ISOLATION


async def test_escalate_after_from_the_spec_sets_the_escalation_timer(quarantines):
    name = workload()
    _, current = await quarantines.isolated(name, spec={"escalateAfter": "30m"})
    assert current.spec["escalateAfter"] == "30m"
    assert current.timer_due is not None
    assert current.timer_due - current.since == timedelta(minutes=30)


# --- GitOps modes (stand-ins answer as the GitOps workers would: see recording_activities) ---


def git_workload() -> str:
    return f"{GITOPS}-{uuid.uuid4().hex[:8]}"


async def with_git(handle: WorkflowHandle, what: Any = lambda git: True) -> OperatorStatus:
    """The status once the machine has recorded what git did and ``what`` holds of it."""
    for _ in range(400):
        current = await status(handle)
        if current.data["git"] is not None and what(current.data["git"]):
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"git never recorded as expected: {current.data['git']}")


async def test_without_a_gitops_repository_every_mode_behaves_as_direct_and_says_so(quarantines):
    name = workload()
    handle, _ = await quarantines.isolated(name, spec={"gitops": {"mode": "pull-request"}})
    current = await with_git(handle)
    assert current.data["git"]["configured"] is False
    assert "git: GitOps is not configured on the worker" in current.details

    receipt = await command(handle, "release", by="sec-oncall", reason="false positive")
    result: OperatorStatus = await handle.result()

    assert receipt.now == "Released" and result.state == "Released"
    assert calls_for(name) == [*ISOLATION, "remove_deny_policy", "unlabel_workload"]


async def test_mode_direct_never_writes_to_git(quarantines):
    name = git_workload()
    handle, _ = await quarantines.isolated(name, spec={"gitops": {"mode": "direct"}})
    await command(handle, "release", by="sec-oncall")
    result: OperatorStatus = await handle.result()

    assert result.data["git"] is None
    assert calls_for(name) == [
        "apply_deny_policy",
        "snapshot_evidence",
        "label_workload",
        "remove_deny_policy",
        "unlabel_workload",
    ]


async def test_a_release_in_git_waits_for_the_merge_and_the_gitops_engine_then_ends_released(
    quarantines,
):
    name = git_workload()
    handle, _ = await quarantines.isolated(name)
    current = await with_git(handle)
    assert (current.data["git"]["record_pr"], current.data["git"]["record_state"]) == (1, "open")

    await deliver_pull_request(
        quarantines.client,
        quarantines.task_queue,
        pull_request_event(NAMESPACE, name, RECORD_PR, merged=True, by="ada"),
    )
    current = await with_git(handle, lambda git: git["record_state"] == "merged")
    assert current.state == "Isolated"

    receipt = await command(handle, "release", by="sec-oncall", reason="false positive")
    assert receipt.now == "Releasing"
    in_review = await wait_for(handle, "ReleaseInReview")
    assert in_review.settled and in_review.data["git"]["release_pr"] == RELEASE_PR
    assert "remove_deny_policy" not in calls_for(name)

    await deliver_pull_request(
        quarantines.client,
        quarantines.task_queue,
        pull_request_event(NAMESPACE, name, RELEASE_PR, merged=True, by="bob"),
    )
    result: OperatorStatus = await handle.result()

    assert result.state == "Released"
    assert moves(result)[-4:] == [
        ("Isolated", "Releasing", "/release"),
        ("Releasing", "ReleaseInReview", "ReleaseProposed"),
        ("ReleaseInReview", "ReleaseApplying", "PullRequestMerged"),
        ("ReleaseApplying", "Released", "ReleaseApplied"),
    ]
    assert calls_for(name)[-4:] == [
        "poll_release",
        "await_release_applied",
        "remove_deny_policy",
        "unlabel_workload",
    ]
    assert result.data["closed_by"] == "sec-oncall"
    assert any("#2 merged by bob" in note for note in result.data["git"]["notes"])


async def test_a_lost_webhook_is_made_up_for_by_the_poll(quarantines):
    name = git_workload()
    handle, _ = await quarantines.isolated(name)
    await with_git(handle)
    await command(handle, "release", by="sec-oncall")
    await wait_for(handle, "ReleaseInReview")

    POLLED[name] = "merged"  # merged on GitHub; no webhook arrives
    result: OperatorStatus = await handle.result()

    assert result.state == "Released"
    assert ("ReleaseInReview", "ReleaseApplying", "PullRequestPolled") in moves(result)
    assert any("(seen by polling)" in note for note in result.data["git"]["notes"])


async def test_a_release_pull_request_closed_unmerged_keeps_the_workload_isolated(quarantines):
    name = git_workload()
    handle, _ = await quarantines.isolated(name)
    await with_git(handle)
    await command(handle, "release", by="sec-oncall", reason="looks fine")
    await wait_for(handle, "ReleaseInReview")

    await deliver_pull_request(
        quarantines.client,
        quarantines.task_queue,
        pull_request_event(NAMESPACE, name, RELEASE_PR, merged=False, by="security-lead"),
    )
    current = await with_git(handle, lambda git: git["release_state"] == "closed")

    assert current.state == "Isolated"
    assert current.accepted_commands == ["escalate", "pause", "release", "remediate"]
    assert current.data["git"]["notes"][-1] == (
        "release refused: pull request #2 was closed unmerged by security-lead "
        "(asked by sec-oncall); still isolated"
    )
    assert "remove_deny_policy" not in calls_for(name)


async def test_a_record_pull_request_closed_unmerged_is_a_problem_and_the_workload_stays_isolated(
    quarantines,
):
    name = git_workload()
    handle, _ = await quarantines.isolated(name)
    await with_git(handle)

    await deliver_pull_request(
        quarantines.client,
        quarantines.task_queue,
        pull_request_event(NAMESPACE, name, RECORD_PR, merged=False, by="eve"),
    )
    current = await with_git(handle, lambda git: git["record_state"] == "closed")

    assert current.state == "Isolated"
    assert current.data["problems"] == [
        "git does not record the isolation: pull request #1 was closed unmerged by eve"
    ]
