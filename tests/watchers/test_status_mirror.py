"""The status mirror keeps a Canary's status current while its rollout stays in one state.

With the real canary operator, the Kubernetes watcher and the status mirror on the local
cluster: a pre-rollout hook that keeps failing leaves the workflow in ``Starting`` while its
failed checks go up; ``kubectl get canaries`` must show each one, not the last one when the
state finally changes. The full re-query (``status_refresh_s``) is set to an hour, so only
the listing's ``CanaryDataHash`` can bring the news.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from models.operator import STATUS_QUERY, OperatorStatus
from tests.canary.hooks import hook_receiver
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    running,
    settings,
    unique,
)
from tests.watchers.test_watchers_e2e import ANALYSIS

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

#: Three pre-rollout failures 3 s apart before the rollback (the metric always passes).
THRESHOLD = 3


def analysis(hook_url: str) -> dict[str, Any]:
    smoke = {"name": "smoke", "type": "pre-rollout", "url": hook_url}
    return {**ANALYSIS, "interval": "3s", "threshold": THRESHOLD, "webhooks": [smoke]}


async def test_each_failed_pre_rollout_hook_reaches_the_canary_status_while_it_stays_starting(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, canary_queue: str
) -> None:
    name = unique("web")
    watch = settings(cluster.namespace, status_interval_s=0.5, status_refresh_s=3600.0)

    def status() -> dict[str, Any]:
        found = cluster.get_canary(name) or {}
        return dict(found.get("status") or {})

    async with hook_receiver() as receiver:
        receiver.status["/smoke"] = 500
        cluster.create_deployment(deployment(name))
        cluster.create_canary(canary(name, analysis=analysis(receiver.url("smoke"))))
        async with running(watch, make_delivery(temporal, canary_queue), kube_api):
            bootstrap = await eventually(status, lambda s: s.get("phase") == "Succeeded")
            cluster.set_image(name, "podinfo:6.6.0")
            seen: list[tuple[str | None, int | None, str | None]] = []  # each change, once
            first_seen: dict[int, datetime] = {}  # failed checks -> when the Canary showed it

            def mirrored() -> dict[str, Any]:
                now = status()
                shown = (now.get("state"), now.get("failedChecks"), now.get("message"))
                if not seen or seen[-1] != shown:
                    seen.append(shown)
                first_seen.setdefault(int(now.get("failedChecks") or 0), datetime.now(UTC))
                return now

            final = await eventually(
                mirrored,
                lambda s: s.get("state") == "Failed" and s.get("runId") != bootstrap["runId"],
                attempts=600,
                pause=0.1,
                what="the rollout to fail and be mirrored",
            )
        workflow = await temporal.get_workflow_handle(final["workflowId"]).query(
            STATUS_QUERY, result_type=OperatorStatus
        )

    while_starting = {checks for state, checks, _ in seen if state == "Starting"}
    assert {1, 2} <= while_starting, f"the failed checks seen in Starting: {seen}"
    messages = {message for state, _, message in seen if state == "Starting" and message}
    assert any(f"pre-rollout hooks failed (2/{THRESHOLD}): smoke" in m for m in messages)
    assert final["phase"] == "Failed" and final["failedChecks"] == THRESHOLD
    assert "smoke: HTTP 500" in final["message"]
    failed_at = [r.at for r in workflow.transitions if r.event == "Started"]
    lags = [(first_seen[n] - failed_at[n - 1]).total_seconds() for n in (1, 2)]
    print(f"\nCanary status behind the workflow's failed checks 1 and 2: {lags} s")
