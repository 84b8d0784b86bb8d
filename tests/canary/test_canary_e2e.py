"""The canary operator end to end: Temporal worker in process, real API server and Prometheus,
simulated pods and traffic. Intervals are 2 s; every wait is functional (state polling)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from models.canary import NewRevision
from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, Target
from models.revisions import pod_template_revision
from tests.canary.cluster import (
    ERROR_RATE,
    app_deployment,
    create_app,
    deployment,
    new_revision,
    virtual_service,
    weights,
)
from tests.canary.e2e import Rollouts, WeightRecorder
from tests.canary.histories import record_if_asked
from tests.canary.hooks import hook_receiver
from tests.canary.specs import spec_dict
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"
#: A 6 s window at 10 % of the simulator's 10 requests a second holds about 6 requests.
SUCCESS_RATE = {
    "name": "request-success-rate",
    "thresholdRange": {"min": 99},
    "interval": "6s",
    "minSampleCount": 3,
}


def canary_spec(**analysis: Any) -> dict[str, Any]:
    return spec_dict(
        "podinfo",
        **{"interval": "2s", "threshold": 2, "metrics": [SUCCESS_RATE], **analysis},
    )


async def deployed(rollouts: Rollouts, kube_api, namespace: str, spec: dict[str, Any]):
    """The app at V1, bootstrapped by a first canary run (nothing to roll out)."""
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    first = await rollouts.start(namespace, "podinfo", spec)
    status = await first.result()
    assert status.state == "Succeeded" and status.data["outcome"] == "initialized"


async def test_a_healthy_canary_is_promoted_through_every_weight(rollouts, kube_api, namespace):
    spec = canary_spec()
    await deployed(rollouts, kube_api, namespace, spec)

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        status = await handle.result()
    await record_if_asked(handle, "canary_promoted_local_workers")

    assert status.state == "Succeeded", status.data
    assert recorder.canary_weights == [0, 10, 20, 30, 40, 50, 0]
    assert status.data["applied_weights"] == [0, 10, 20, 30, 40, 50, 0]
    assert weights(virtual_service(kube_api, namespace, "podinfo")) == {
        "podinfo-primary": 100,
        "podinfo-canary": 0,
    }
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0
    assert status.data["failed_checks"] == 0


async def test_a_canary_with_half_its_requests_failing_is_rolled_back(
    rollouts, kube_api, namespace
):
    spec = canary_spec(threshold=2)
    await deployed(rollouts, kube_api, namespace, spec)

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2, {ERROR_RATE: "0.5"})
        handle = await rollouts.start(namespace, "podinfo", spec)
        status = await rollouts.wait_for(handle, "Failed")

    assert recorder.canary_weights[-1] == 0 and max(recorder.canary_weights) <= 20
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    data = status.data
    assert data["failed_checks"] == 2 and data["outcome"] == "rolled back"
    [metric] = data["failed_metrics"]
    assert metric["name"] == "request-success-rate" and metric["min"] == 99
    assert 30 < metric["value"] < 70  # about half of the canary's requests fail
    assert "request-success-rate" in data["failure"]
    assert status.settled and "retry" in status.accepted_commands


async def test_the_promotion_gate_waits_for_an_approval_recorded_with_who_gave_it(
    rollouts, kube_api, namespace
):
    spec = canary_spec(stepWeight=25, gates={"beforePromotion": True})
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)

    progressing = await rollouts.wait_for(handle, "Progressing")
    await rollouts.command(handle, "pause", by="alice")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await rollouts.command(handle, "approve", by="alice")
    assert "not accepted in state Progressing" in str(refused.value.cause)
    assert progressing.state == "Progressing"
    await rollouts.command(handle, "resume", by="alice")

    waiting = await rollouts.wait_for(handle, "AwaitingPromotion")
    assert waiting.data["canary_weight"] == 50
    # It keeps analysing at max weight and comes back to the gate, never past it.
    again = await rollouts.wait_for(handle, "Analysing")
    again = await rollouts.wait_for(handle, "AwaitingPromotion")
    assert again.data["iterations"] > waiting.data["iterations"]

    receipt = await rollouts.command(handle, "approve", by="alice", reason="dashboards are green")
    assert receipt.state == "AwaitingPromotion"
    status = await handle.result()

    assert status.state == "Succeeded"
    approvals = [c for c in status.commands if c.command == "approve"]
    assert [(c.by, c.reason, c.state) for c in approvals] == [
        ("alice", "dashboards are green", "AwaitingPromotion")
    ]
    assert status.data["approvals"][0]["by"] == "alice"
    history = await handle.fetch_history()
    updates = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert any(b"alice" in e.SerializeToString() for e in updates)


NO_METRIC = {
    "name": "absent",
    "query": 'sum(rate(no_such_metric{namespace="{{ namespace }}"}[{{ interval }}]))',
    "thresholdRange": {"max": 1},
}


async def test_no_data_held_past_its_limit_fails_the_rollout_at_the_first_weight(
    rollouts, kube_api, namespace
):
    spec = canary_spec(threshold=1, noDataHoldIntervals=1, metrics=[NO_METRIC])
    await deployed(rollouts, kube_api, namespace, spec)

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        status = await rollouts.wait_for(handle, "Failed")

    assert recorder.canary_weights == [0, 10, 0]
    assert status.data["iterations"] == 2  # one held interval, then the failure
    assert "absent: no data" in status.data["failure"]


async def test_no_data_with_the_pass_policy_promotes(rollouts, kube_api, namespace):
    spec = canary_spec(maxWeight=20, metrics=[{**NO_METRIC, "noData": "pass"}])
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)

    status = await (await rollouts.start(namespace, "podinfo", spec)).result()

    assert status.state == "Succeeded" and status.data["applied_weights"] == [0, 10, 20, 0]


V3 = "ghcr.io/stefanprodan/podinfo:6.5.2"


async def test_a_new_revision_during_a_rollout_restarts_the_analysis_on_it(
    rollouts, kube_api, namespace
):
    spec = canary_spec()
    await deployed(rollouts, kube_api, namespace, spec)

    with WeightRecorder(kube_api, namespace, "podinfo") as recorder:
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        await rollouts.wait_for_weight(handle, 20)
        new_revision(kube_api, namespace, "podinfo", V3)
        await rollouts.signal(handle, "NewRevision", "deploy-v3")  # what the watcher sends
        status = await handle.result()

    assert status.state == "Succeeded"
    restarted = recorder.canary_weights.index(0, 1)
    assert recorder.canary_weights[:restarted] == [0, 10, 20][:restarted]
    assert recorder.canary_weights[restarted:] == [0, 10, 20, 30, 40, 50, 0]
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V3


async def test_abort_returns_all_traffic_to_the_primary_and_ends_the_rollout(
    rollouts, kube_api, namespace
):
    spec = canary_spec()
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)
    await rollouts.wait_for_weight(handle, 20)

    await rollouts.command(handle, "abort", by="bob", reason="wrong build")
    status = await handle.result()

    assert status.state == "Aborted"
    assert status.data["failure"].startswith("aborted by bob")
    assert weights(virtual_service(kube_api, namespace, "podinfo"))["podinfo-canary"] == 0
    assert deployment(kube_api, namespace, "podinfo")["spec"]["replicas"] == 0


async def test_retry_rolls_a_failed_revision_out_again_without_a_spec_change(
    rollouts, kube_api, namespace
):
    async with hook_receiver() as receiver:
        receiver.status["/smoke"] = 500
        smoke = {"name": "smoke", "type": "pre-rollout", "url": receiver.url("smoke")}
        spec = canary_spec(threshold=1, maxWeight=20, webhooks=[smoke])
        await deployed(rollouts, kube_api, namespace, spec)
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        failed = await rollouts.wait_for(handle, "Failed")
        assert "smoke: HTTP 500" in failed.data["failure"]

        receiver.status["/smoke"] = 200  # the smoke test's dependency is fixed
        await rollouts.command(handle, "retry", by="carol")
        status = await handle.result()

    assert status.state == "Succeeded" and status.data["attempt"] == 1
    primary = deployment(kube_api, namespace, "podinfo-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == V2


async def test_a_failing_sample_from_the_watcher_rolls_back_before_the_next_interval(
    rollouts, kube_api, namespace
):
    spec = canary_spec(interval="1h", threshold=1)  # only the sample can end this rollout
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)
    await rollouts.wait_for_weight(handle, 10)

    sample = {"name": "request-success-rate", "value": 12.5, "at": datetime.now(UTC).isoformat()}
    await rollouts.signal(handle, "MetricSample", "sample-1", **sample)
    status = await rollouts.wait_for(handle, "Failed")

    assert weights(virtual_service(kube_api, namespace, "podinfo"))["podinfo-canary"] == 0
    assert "request-success-rate 12.5" in status.data["failure"]
    assert status.data["iterations"] == 0  # no interval analysis was needed


async def test_a_first_run_started_by_a_new_revision_completes_and_starts_no_other(
    rollouts, kube_api, namespace
):
    # As the CLI and the watchers start it: signal-with-start of the NewRevision. The first
    # run only creates the primary from V1, so that event is moot and must not be handed to
    # a new run (which would hand it on again, for ever).
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    live = deployment(kube_api, namespace, "podinfo")
    revision = NewRevision(revision=pod_template_revision(live["spec"]["template"]))
    target = Target(namespace=namespace, name="podinfo")
    handle = await rollouts.client.start_workflow(
        "canary",
        OperatorInput(target=target, spec=canary_spec()),
        id=target.workflow_id("canary"),
        task_queue=rollouts.task_queue,
        start_signal=EVENT_SIGNAL,
        start_signal_args=[
            EventEnvelope(
                id=f"test:{namespace}:v1",
                type=NewRevision.type_name(),
                payload=revision.model_dump(mode="json"),
                source="test",
            )
        ],
    )
    first_run = rollouts.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)

    async def closed():
        return (await first_run.describe()).status

    ended = await eventually(closed, lambda s: s != WorkflowExecutionStatus.RUNNING, what="ended")
    assert ended == WorkflowExecutionStatus.COMPLETED
