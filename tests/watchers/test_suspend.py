"""Flagger's ``spec.suspend`` on a Canary: the watcher pauses and resumes its workflow.

First what the watcher decides (a pure function), then the real thing: a canary rolling out
on the local cluster, held and released by editing its Canary resource.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client
from typer.testing import CliRunner

from cli.errors import Exit
from cli.main import app
from models.canary_watch import CANARY_FINALIZER
from models.operator import STATUS_QUERY, OperatorStatus
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    running,
    runs,
    settings,
    unique,
)
from watchers.kube.decide import SUSPEND_BY, Command, Send, WriteStatus, decide
from watchers.kube.objects import CanaryObject, DeploymentState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MANIFEST = Path(__file__).parents[1] / "canary" / "manifests" / "flagger-suspend.yaml"


def live_canary(suspend: bool | None, status: dict[str, Any]) -> CanaryObject:
    raw = canary("web")
    if suspend is not None:
        raw["spec"]["suspend"] = suspend
    raw["metadata"].update(
        {
            "namespace": "shop",
            "uid": "c-uid",
            "generation": 3,
            "resourceVersion": "10",
            "finalizers": [CANARY_FINALIZER],
        }
    )
    raw["status"] = status
    return CanaryObject.from_raw(raw)


def live_deployment(image: str = "web:1") -> DeploymentState:
    raw = deployment("web", image)
    raw["metadata"].update({"namespace": "shop", "uid": "d-uid", "generation": 5})
    return DeploymentState.from_raw(raw)


def delivered(target: DeploymentState, **more: Any) -> dict[str, Any]:
    """The status of a Canary whose revision reached its workflow."""
    return {
        "observedRevision": target.revision,
        "targetUid": target.uid,
        "observedGeneration": 3,
        "workflowId": "canary/shop/web",
        **more,
    }


# --- what the watcher decides ----------------------------------------------------------


def test_suspending_a_canary_pauses_its_workflow_by_the_watcher_for_spec_suspend() -> None:
    target = live_deployment()

    [command] = decide(live_canary(True, delivered(target)), target, NOW)

    assert isinstance(command, Command)
    assert command.workflow_id == "canary/shop/web"
    assert command.request.command == "pause"
    assert (command.request.by, command.request.reason) == (SUSPEND_BY, "spec.suspend")
    assert command.status == {"suspended": True}


def test_unsuspending_resumes_it_and_a_suspend_already_applied_sends_nothing() -> None:
    target = live_deployment()

    [command] = decide(live_canary(False, delivered(target, suspended=True)), target, NOW)

    assert isinstance(command, Command) and command.request.command == "resume"
    assert command.status == {"suspended": False}
    assert decide(live_canary(True, delivered(target, suspended=True)), target, NOW) == []
    assert decide(live_canary(None, delivered(target)), target, NOW) == []


def test_a_change_of_suspend_alone_is_not_a_new_revision() -> None:
    target = live_deployment()

    actions = decide(live_canary(True, delivered(target)), target, NOW)
    actions += decide(live_canary(False, delivered(target, suspended=True)), target, NOW)

    assert not [action for action in actions if isinstance(action, Send)]


def test_a_new_revision_of_a_suspended_canary_waits_and_goes_out_after_the_resume() -> None:
    old, new = live_deployment("web:1"), live_deployment("web:2")

    held = decide(live_canary(True, delivered(old, suspended=True)), new, NOW)
    released = decide(live_canary(False, delivered(old, suspended=True)), new, NOW)

    assert held == [
        WriteStatus({"message": f"suspended (spec.suspend): revision {new.revision} waits"})
    ]
    resume, send = released
    assert isinstance(resume, Command) and resume.request.command == "resume"
    assert isinstance(send, Send) and send.envelope.payload["revision"] == new.revision


# --- the CLI and lint ------------------------------------------------------------------


def test_flaggers_manifest_with_suspend_passes_lint_unchanged() -> None:
    result = CliRunner().invoke(app, ["lint", str(MANIFEST)], catch_exceptions=False)

    assert result.exit_code == Exit.OK, result.output


def test_canary_start_with_a_suspended_spec_is_refused_saying_why() -> None:
    result = CliRunner().invoke(
        app, ["canary", "start", "podinfo", "-n", "test", "-f", str(MANIFEST)]
    )

    assert result.exit_code == Exit.INVALID, result.output
    assert "spec.suspend is true: a suspended canary starts no rollout" in result.output


# --- on the local cluster, with the real canary operator ------------------------------

#: A rollout slow enough to be caught in Progressing: 2 s per step, ten steps.
ANALYSIS: dict[str, Any] = {
    "interval": "2s",
    "threshold": 2,
    "stepWeight": 10,
    "maxWeight": 100,
    "metrics": [
        {
            "name": "request-success-rate",
            "interval": "30s",
            "thresholdRange": {"min": 0},
            "noData": "pass",
        }
    ],
}


async def machine(temporal: Client, workflow_id: str) -> OperatorStatus:
    handle = temporal.get_workflow_handle(workflow_id)
    status: OperatorStatus = await handle.query(STATUS_QUERY, result_type=OperatorStatus)
    return status


def set_suspend(cluster: Cluster, name: str, suspend: bool) -> None:
    cluster.custom.patch_namespaced_custom_object(
        "autopilot.dev",
        "v1alpha1",
        cluster.namespace,
        "canaries",
        name,
        {"spec": {"suspend": suspend}},
    )


@pytest.mark.cluster
@pytest.mark.temporal
@pytest.mark.usefixtures("cleanup")
async def test_suspend_on_the_canary_resource_pauses_a_running_rollout_and_false_resumes_it(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, canary_queue: str
) -> None:
    name = unique("web")
    workflow_id = f"canary/{cluster.namespace}/{name}"
    cluster.create_deployment(deployment(name, replicas=2))
    cluster.create_canary(canary(name, analysis=ANALYSIS))

    async with running(
        settings(cluster.namespace), make_delivery(temporal, canary_queue), kube_api
    ):
        await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("phase") == "Succeeded",
        )  # bootstrapped
        cluster.set_image(name, "podinfo:6.6.0")
        rollout = (await eventually(lambda: runs(temporal, workflow_id), lambda r: len(r) == 2))[-1]
        await eventually(
            lambda: machine(temporal, workflow_id),
            lambda s: s.state in ("Progressing", "Analysing"),
            attempts=600,
        )

        set_suspend(cluster, name, True)
        paused = await eventually(lambda: machine(temporal, workflow_id), lambda s: s.paused)
        held = await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("suspended") is True,
        )

        set_suspend(cluster, name, False)
        await eventually(lambda: machine(temporal, workflow_id), lambda s: not s.paused)
        final = await eventually(
            lambda: (cluster.get_canary(name) or {}).get("status", {}),
            lambda s: s.get("phase") == "Succeeded" and s.get("runId") == rollout,
            attempts=600,
        )

    pause = next(c for c in paused.commands if c.command == "pause")
    assert (pause.by, pause.reason) == (SUSPEND_BY, "spec.suspend")
    assert held["observedRevision"] == final["observedRevision"]  # no new revision meanwhile
    assert final["suspended"] is False
    assert len(await runs(temporal, workflow_id)) == 2  # the same rollout, resumed
