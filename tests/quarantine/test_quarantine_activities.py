"""The quarantine workers against the real API server, with Istio's real CRD schemas.

Each test gets a fresh namespace. Workers run in Temporal's ``ActivityEnvironment``, so
``activity.logger`` and friends work as they do in a worker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import kube
from activities import quarantine as workers
from activities.kube.events import OCCURRENCES, event_name
from tests.canary.cluster import new_revision
from tests.quarantine.cluster import (
    NOW,
    create_app,
    deployment,
    kubectl_json,
    policies,
    step_for,
)
from tests.watchers.support import kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("quarantine_kube")]


async def run(fn: Any, step: Any) -> Any:
    return await ActivityEnvironment().run(fn, step)


def foreign_policy(namespace: str, name: str) -> Any:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["shop"]}}]}]},
    }


# ------------------------------------------------------------------- the policy


async def test_the_deny_policy_is_a_real_authorization_policy_as_kubectl_shows_it(
    kube_api, namespace, kubeconfig_path
):
    create_app(kube_api, namespace, "web")
    applied = await run(workers.apply_deny_policy, step_for(namespace, "web"))

    assert (applied.name, applied.selector, applied.selected_by) == (
        "web-quarantine",
        {"app": "web"},
        "deployment",
    )
    shown = kubectl_json(
        kubeconfig_path, "get", "authorizationpolicy", "web-quarantine", "-n", namespace
    )
    assert shown["apiVersion"] == "security.istio.io/v1"
    assert shown["spec"] == {
        "action": "DENY",
        "rules": [{}],
        "selector": {"matchLabels": {"app": "web"}},
    }
    assert shown["metadata"]["annotations"]["autopilot.dev/managed-by"] == "quarantine"
    assert (
        shown["metadata"]["annotations"]["autopilot.dev/workflow"] == f"quarantine/{namespace}/web"
    )
    assert shown["metadata"]["annotations"]["autopilot.dev/alert"] == "CryptoMinerDetected"
    assert shown["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "autopilot"


async def test_the_istio_schema_is_enforced_so_an_accepted_policy_passed_it(kube_api, namespace):
    broken = foreign_policy(namespace, "broken")
    broken["spec"]["action"] = "QUARANTINE"
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "security.istio.io", "v1", namespace, "authorizationpolicies", broken
        )
    assert refused.value.status == 422 and "spec.action" in str(refused.value.body)


async def test_applying_the_policy_twice_writes_it_once(kube_api, namespace):
    create_app(kube_api, namespace, "web")
    step = step_for(namespace, "web")
    first = await run(workers.apply_deny_policy, step)
    version = policies(kube_api, namespace)[0]["metadata"]["resourceVersion"]

    second = await run(workers.apply_deny_policy, step)

    assert (first.changed, second.changed) == (True, False)
    listed = policies(kube_api, namespace)
    assert len(listed) == 1 and listed[0]["metadata"]["resourceVersion"] == version


async def test_a_policy_weakened_by_hand_is_put_back(kube_api, namespace):
    create_app(kube_api, namespace, "web")
    step = step_for(namespace, "web")
    await run(workers.apply_deny_policy, step)
    live = policies(kube_api, namespace)[0]
    live["spec"]["action"] = "AUDIT"
    client.CustomObjectsApi(kube_api).replace_namespaced_custom_object(
        "security.istio.io", "v1", namespace, "authorizationpolicies", "web-quarantine", live
    )

    again = await run(workers.apply_deny_policy, step)

    assert again.changed
    assert policies(kube_api, namespace)[0]["spec"]["action"] == "DENY"


async def test_exempt_namespaces_may_still_reach_the_workload(kube_api, namespace):
    create_app(kube_api, namespace, "web")
    step = step_for(namespace, "web", spec={"exemptNamespaces": ["forensics"]})
    await run(workers.apply_deny_policy, step)
    assert policies(kube_api, namespace)[0]["spec"]["rules"] == [
        {"from": [{"source": {"notNamespaces": ["forensics"]}}]}
    ]


async def test_a_policy_of_that_name_that_is_not_ours_is_never_replaced_or_deleted(
    kube_api, namespace
):
    create_app(kube_api, namespace, "web")
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "security.istio.io",
        "v1",
        namespace,
        "authorizationpolicies",
        foreign_policy(namespace, "web-quarantine"),
    )
    step = step_for(namespace, "web")

    with pytest.raises(ApplicationError) as refused:
        await run(workers.apply_deny_policy, step)
    await run(workers.remove_deny_policy, step)

    assert refused.value.non_retryable
    assert "is not managed by autopilot" in str(refused.value)
    assert policies(kube_api, namespace)[0]["spec"]["action"] == "ALLOW"


async def test_removing_the_policy_deletes_it_and_removing_it_again_is_harmless(
    kube_api, namespace
):
    create_app(kube_api, namespace, "web")
    step = step_for(namespace, "web")
    await run(workers.apply_deny_policy, step)

    await run(workers.remove_deny_policy, step)
    await run(workers.remove_deny_policy, step)

    assert policies(kube_api, namespace) == []


async def test_an_alert_naming_a_service_isolates_the_pods_behind_it(kube_api, namespace):
    service: Any = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments"},
        "spec": {"selector": {"app": "payments-api"}, "ports": [{"port": 80}]},
    }
    client.CoreV1Api(kube_api).create_namespaced_service(namespace, service)

    applied = await run(workers.apply_deny_policy, step_for(namespace, "payments"))

    assert (applied.selector, applied.selected_by) == ({"app": "payments-api"}, "service")


async def test_nothing_to_isolate_fails_at_once_and_says_how_to_fix_it(namespace):
    with pytest.raises(ApplicationError) as failed:
        await run(workers.apply_deny_policy, step_for(namespace, "ghost"))
    assert failed.value.non_retryable
    assert f"no Deployment or Service {namespace}/ghost" in str(failed.value)
    assert "set spec.selector" in str(failed.value)


# ------------------------------------------------------------------- evidence


async def test_the_evidence_configmap_keeps_the_workload_its_images_and_the_alert(
    kube_api, namespace
):
    create_app(kube_api, namespace, "web")
    recorded = await run(workers.snapshot_evidence, step_for(namespace, "web"))

    assert recorded.config_map == "web-quarantine-evidence"
    assert recorded.images == ["app=ghcr.io/example/web:1.0"]
    evidence: Any = client.CoreV1Api(kube_api).read_namespaced_config_map(
        "web-quarantine-evidence", namespace
    )
    assert evidence.immutable
    workload = json.loads(evidence.data["workload.json"])
    assert workload["metadata"]["labels"] == {"app": "web", "team": "shop"}
    assert (
        workload["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/web:1.0"
    )
    assert json.loads(evidence.data["alerts.json"])[0]["alertname"] == "CryptoMinerDetected"
    assert evidence.data["images.txt"] == "app=ghcr.io/example/web:1.0\n"


async def test_a_retried_snapshot_keeps_the_first_evidence_and_a_new_incident_replaces_it(
    kube_api, namespace
):
    create_app(kube_api, namespace, "web")
    step = step_for(namespace, "web")
    await run(workers.snapshot_evidence, step)
    new_revision(kube_api, namespace, "web", "ghcr.io/example/web:1.1")

    retried = await run(workers.snapshot_evidence, step)
    later = step_for(namespace, "web", quarantined_at=NOW.replace(day=20))
    new_incident = await run(workers.snapshot_evidence, later)

    assert retried.images == ["app=ghcr.io/example/web:1.0"]
    assert new_incident.images == ["app=ghcr.io/example/web:1.1"]


# ------------------------------------------------------------------- the label


async def test_the_deployment_is_labelled_and_unlabelled_without_restarting_its_pods(
    kube_api, namespace
):
    create_app(kube_api, namespace, "web")
    before = deployment(kube_api, namespace, "web")
    step = step_for(namespace, "web")

    await run(workers.label_workload, step)
    labelled = deployment(kube_api, namespace, "web")
    await run(workers.unlabel_workload, step)
    unlabelled = deployment(kube_api, namespace, "web")

    assert labelled["metadata"]["labels"]["autopilot.dev/quarantined"] == "true"
    assert labelled["metadata"]["generation"] == before["metadata"]["generation"]
    assert labelled["spec"]["template"] == before["spec"]["template"]
    assert unlabelled["metadata"]["labels"] == before["metadata"]["labels"]
    assert unlabelled["metadata"]["generation"] == before["metadata"]["generation"]


async def test_labelling_a_workload_that_is_gone_is_not_an_error(namespace):
    await run(workers.label_workload, step_for(namespace, "gone"))
    await run(workers.unlabel_workload, step_for(namespace, "gone"))


# ------------------------------------------------------------------- escalation


@pytest.fixture
async def security_inbox() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    """A receiver on loopback standing in for the security team's webhook endpoint."""
    received: list[tuple[dict[str, str], Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.json()))
        status = 404 if request.path.endswith("/wrong") else 202
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def quarantine_events(kubeconfig_path: Path, namespace: str) -> list[dict[str, Any]]:
    """The namespace's Events the quarantine operator wrote (the real controllers and the
    scheduler write theirs about the pods too)."""
    events = kubectl_json(kubeconfig_path, "get", "events", "-n", namespace)["items"]
    return [e for e in events if e.get("reportingComponent") == "autopilot-quarantine"]


async def test_escalation_posts_to_the_notify_url_and_leaves_a_kubernetes_event(
    kube_api, namespace, kubeconfig_path, security_inbox
):
    url, received = security_inbox
    create_app(kube_api, namespace, "web")
    step = step_for(
        namespace,
        "web",
        state="Escalated",
        spec={"notifyUrl": f"{url}/hooks/secret-token"},
        policy="web-quarantine",
        escalation_reason="still isolated after 4h",
    )

    told = await run(workers.notify_security, step)
    again = await run(workers.notify_security, step)

    headers, body = received[0]
    assert headers["Idempotency-Key"] == step.step_key
    assert body["workflow_id"] == f"quarantine/{namespace}/web"
    assert (body["isolated"], body["policy"], body["reason"]) == (
        True,
        "web-quarantine",
        "still isolated after 4h",
    )
    assert body["alerts"][0]["alertname"] == "CryptoMinerDetected"
    assert told.status == 202 and "secret-token" not in (told.posted_to or "")
    events = quarantine_events(kubeconfig_path, namespace)
    assert [(e["reason"], e["involvedObject"]["name"]) for e in events] == [
        ("QuarantineEscalated", "web")
    ]
    [event] = events
    assert "CryptoMinerDetected (critical); isolated by web-quarantine" in event["message"]
    assert again.kubernetes_event == told.kubernetes_event
    # Written by the shared recorder: its name, its marks, and the retry counted once.
    about = kube.ObjectRef.of(deployment(kube_api, namespace, "web"))
    name = event_name(about, "QuarantineEscalated", event["message"])
    assert told.kubernetes_event == f"{namespace}/{name}"
    assert event["involvedObject"]["uid"] == about.uid and event["count"] == 1
    assert event["source"]["component"] == "autopilot-quarantine"
    assert OCCURRENCES in event["metadata"]["annotations"]


async def test_isolating_and_releasing_are_events_on_the_deployment(
    kube_api, namespace, kubeconfig_path
):
    create_app(kube_api, namespace, "web")
    await run(workers.apply_deny_policy, step_for(namespace, "web"))
    await run(workers.apply_deny_policy, step_for(namespace, "web"))  # already as wanted
    await run(workers.remove_deny_policy, step_for(namespace, "web", state="Released"))

    shown = kubectl(kubeconfig_path, "events", "-n", namespace, "--for", "deployment/web")
    assert "Quarantined" in shown and "AuthorizationPolicy web-quarantine (DENY)" in shown
    assert "QuarantineLifted" in shown
    events = quarantine_events(kubeconfig_path, namespace)
    assert sorted((e["reason"], e["count"]) for e in events) == [
        ("QuarantineLifted", 1),
        ("Quarantined", 1),
    ]


async def test_a_notify_url_that_answers_404_fails_at_once_instead_of_retrying(
    kube_api, namespace, security_inbox
):
    url, _ = security_inbox
    step = step_for(namespace, "web", state="Escalated", spec={"notifyUrl": f"{url}/wrong"})
    with pytest.raises(ApplicationError) as failed:
        await run(workers.notify_security, step)
    assert failed.value.non_retryable and "answered 404" in str(failed.value)
