"""Secrets stay secret: no webhook secret, token or API key in logs, histories, status or errors.

The real worker runs with every secret it can hold set to a random value, takes signed and
badly signed requests on each webhook endpoint, starts workflows from them, and is then
searched: its whole log, every workflow history of the test's namespace (as JSON, the way
the Temporal UI reads it), every status query, and the namespace's Kubernetes objects. The
Temporal API key cannot reach the local server (an API key turns TLS on), so it is checked
where it can leak: the errors of a worker and a CLI that fail to connect with it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from service.temporal import connect
from tests.framework.beacon_operator import BEACON_LABEL
from tests.framework.processes import (
    ROOT,
    SECRET,
    WorkerProcess,
    environment,
    post,
    worker_fixture,
)
from tests.quarantine.alerts import alert, notification
from tests.waiting import eventually
from watchers.webhooks import sign

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: One random value per secret the worker may hold (SECRET is the events endpoint's).
ALERTMANAGER_TOKEN = f"am-{secrets.token_hex(16)}"
GITHUB_SECRET = f"gh-{secrets.token_hex(16)}"
TEMPORAL_API_KEY = f"tk-{secrets.token_hex(16)}"
ALL_SECRETS = (SECRET, ALERTMANAGER_TOKEN, GITHUB_SECRET)

worker = worker_fixture(
    "tests.framework.beacon_operator",
    AUTOPILOT_WEBHOOK_ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
    AUTOPILOT_WEBHOOK_GITHUB_SECRET=GITHUB_SECRET,
)


async def everything_kept(temporal: Client, kube_api: client.ApiClient, namespace: str) -> str:
    """Every history and status of the namespace's workflows, and its Kubernetes objects."""
    parts: list[str] = []
    async for execution in temporal.list_workflows(f'WorkflowId STARTS_WITH "beacon/{namespace}"'):
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        parts.append(history.to_json())
        parts.append(str(await handle.describe()))
    async for execution in temporal.list_workflows(
        f'WorkflowId STARTS_WITH "quarantine/{namespace}"'
    ):
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        parts.append((await handle.fetch_history()).to_json())
        parts.append(json.dumps(await handle.query("status")))
    core = client.CoreV1Api(kube_api)
    for listed in (
        core.list_namespaced_config_map(namespace),
        core.list_namespaced_event(namespace),
    ):
        parts.append(json.dumps(kube_api.sanitize_for_serialization(listed)))
    return "\n".join(parts)


async def test_no_secret_reaches_a_log_a_history_a_status_or_an_object(
    worker: WorkerProcess, kube_api: client.ApiClient, namespace: str, temporal_address: str
) -> None:
    temporal = await connect(temporal_address)
    core = client.CoreV1Api(kube_api)
    beacon: Any = {
        "metadata": {"name": "web", "labels": {BEACON_LABEL: "true"}},
        "data": {"level": "red"},
    }
    core.create_namespaced_config_map(namespace, beacon)
    flare = json.dumps(
        {"operator": "beacon", "namespace": namespace, "name": "web", "id": "f1", "type": "Flare"}
    ).encode()
    alerts = notification(alert(namespace, "web")).model_dump_json(by_alias=True).encode()
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()

    await eventually(
        lambda: started(temporal, f"beacon/{namespace}/web"),
        what=f"the beacon started by its ConfigMap\n{worker.output()}",
    )
    assert await eventually(
        lambda: asyncio.to_thread(post, worker.port, "/v1/events", flare, {}),
        lambda code: code != 0,
        what="the webhook server",
    )
    answers = [
        await asyncio.to_thread(post, worker.port, path, body, headers)
        for path, body, headers in [
            ("/v1/events", flare, {"X-Autopilot-Signature": sign("wrong-key", flare)}),
            ("/v1/events", flare, {"X-Autopilot-Signature": sign(SECRET, flare)}),
            ("/v1/alertmanager", alerts, {"Authorization": "Bearer wrong-token"}),
            ("/v1/alertmanager", alerts, {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}),
            (
                "/v1/github",
                ping,
                {"X-Hub-Signature-256": sign("wrong", ping), "X-GitHub-Event": "ping"},
            ),
            (
                "/v1/github",
                ping,
                {
                    "X-Hub-Signature-256": sign(GITHUB_SECRET, ping),
                    "X-GitHub-Event": "ping",
                    "X-GitHub-Delivery": "d-1",
                },
            ),
        ]
    ]

    assert answers[0::2] == [401, 401, 401], answers
    assert answers[1] == 202 and answers[3] in (200, 202) and answers[5] == 200, answers
    await eventually(
        lambda: started(temporal, f"quarantine/{namespace}/web"),
        what=f"a quarantine\n{worker.output()}",
    )
    kept = await everything_kept(temporal, kube_api, namespace) + worker.output()
    assert "beacon/" in kept and "CryptoMinerDetected" in kept  # what was searched is there
    for secret in ALL_SECRETS:
        assert secret not in kept


async def started(temporal: Client, workflow_id: str) -> bool:
    return [e async for e in temporal.list_workflows(f'WorkflowId = "{workflow_id}"')] != []


def test_a_temporal_api_key_is_in_no_error_of_the_worker_or_the_cli(temporal_address: str) -> None:
    env = {
        **environment(ROOT / "no-kubeconfig", ""),
        "AUTOPILOT_TEMPORAL_API_KEY": TEMPORAL_API_KEY,
    }
    failed: list[subprocess.CompletedProcess[str]] = []
    for argv in (
        [sys.executable, "worker_main.py", "--address", temporal_address, "--no-watchers"],
        [sys.executable, "-m", "cli", "list", "--address", temporal_address],
    ):
        failed.append(
            subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
            )
        )

    for run in failed:
        assert run.returncode != 0, run.stdout + run.stderr  # TLS to a plain server: refused
        assert TEMPORAL_API_KEY not in run.stdout + run.stderr
