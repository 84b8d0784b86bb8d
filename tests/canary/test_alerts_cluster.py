"""Alerts through the real API server: providers and their Secrets read by the activity, and a
faulty canary end to end whose alerts reach a Slack-type and a Teams-type receiver.

The receivers are real HTTP servers on loopback playing the chat tools' incoming webhooks.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError

from activities.canary.alerts import send_alert
from models.alerts import AlertSeverity, CanaryAlert, SendAlert
from models.operator import Target
from models.promql import BUILTIN_QUERIES
from tests.canary.cluster import ERROR_RATE, app_deployment, create_app, new_revision
from tests.canary.e2e import Rollouts
from tests.canary.histories import record_if_asked
from tests.canary.hooks import hook_receiver
from tests.canary.specs import spec_dict
from tests.canary.test_alerts_replay import decoded
from tests.fixtures.cluster import fresh_namespace
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster]

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"


def create(api: client.ApiClient, namespace: str, plural: str, kind: str, name: str, spec: Any):
    body = {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "autopilot.dev", "v1alpha1", namespace, plural, body
    )


def create_provider(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]):
    create(api, namespace, "alertproviders", "AlertProvider", name, spec)


def create_secret(api: client.ApiClient, namespace: str, name: str, address: str) -> None:
    data = {"address": base64.b64encode(address.encode()).decode()}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=data)
    client.CoreV1Api(api).create_namespaced_secret(namespace, body)


def alert_request(namespace: str, provider: dict[str, Any], key: str = "evt-1") -> SendAlert:
    alert = CanaryAlert.model_validate({"name": "on-call", "providerRef": provider})
    return SendAlert(
        workflow_id=f"canary/{namespace}/podinfo",
        target=Target(namespace=namespace, name="podinfo"),
        key=key,
        alert=alert,
        severity=AlertSeverity.ERROR,
        message="Failed checks threshold reached 2",
    )


async def test_an_address_from_a_secret_is_used_and_never_shown(
    kube_api, namespace, canary_env, caplog
):
    caplog.set_level(logging.DEBUG)
    async with hook_receiver() as receiver:
        secret_path = "/services/T000/B000/very-secret-token"
        create_secret(kube_api, namespace, "slack-url", receiver.url(secret_path))
        create_provider(
            kube_api, namespace, "slack", {"type": "slack", "secretRef": {"name": "slack-url"}}
        )

        result = await send_alert(alert_request(namespace, {"name": "slack"}))

        assert result.sent and result.status == 200
        assert [path for path, _ in receiver.received] == [secret_path]
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp.access")]
    assert "very-secret-token" not in result.model_dump_json()
    assert not [line for line in ours if "very-secret-token" in line]


async def test_a_retried_alert_is_posted_once(kube_api, namespace, canary_env):
    async with hook_receiver() as receiver:
        create_provider(
            kube_api, namespace, "teams", {"type": "msteams", "address": receiver.url("/t")}
        )
        request = alert_request(namespace, {"name": "teams"}, key="evt-retried")

        first = await send_alert(request)
        again = await send_alert(request)

        assert first.sent and again.repeat
        assert len(receiver.received) == 1


async def test_a_provider_in_another_namespace_is_found_by_its_ref(kube_api, namespace, canary_env):
    async with hook_receiver() as receiver:
        with fresh_namespace(kube_api) as ops:
            create_provider(
                kube_api, ops, "chat", {"type": "rocket", "address": receiver.url("/r")}
            )

            result = await send_alert(alert_request(namespace, {"name": "chat", "namespace": ops}))

        assert result.sent and result.provider == f"{ops}/chat"
        assert receiver.bodies("/r")[0]["attachments"][0]["color"] == "#FF0000"


async def test_a_missing_provider_or_secret_key_is_reported_not_retried(
    kube_api, namespace, canary_env
):
    missing = await send_alert(alert_request(namespace, {"name": "nobody"}))
    empty = client.V1Secret(metadata=client.V1ObjectMeta(name="empty"), string_data={"url": "x"})
    client.CoreV1Api(kube_api).create_namespaced_secret(namespace, empty)
    create_provider(
        kube_api, namespace, "keyless", {"type": "slack", "secretRef": {"name": "empty"}}
    )
    keyless = await send_alert(alert_request(namespace, {"name": "keyless"}, key="evt-2"))

    assert not missing.sent and missing.message == f"AlertProvider {namespace}/nobody not found"
    assert not keyless.sent
    assert keyless.message == (
        f"AlertProvider {namespace}/keyless names Secret empty, which has no key 'address'"
    )


async def test_a_provider_that_answers_503_is_retried_with_an_error_that_hides_the_address(
    kube_api, namespace, canary_env
):
    async with hook_receiver() as receiver:
        receiver.status["/down/secret-path"] = 503
        create_secret(kube_api, namespace, "down-url", receiver.url("/down/secret-path"))
        create_provider(
            kube_api, namespace, "down", {"type": "slack", "secretRef": {"name": "down-url"}}
        )

        with pytest.raises(ApplicationError) as raised:
            await send_alert(alert_request(namespace, {"name": "down"}, key="evt-503"))

    assert str(raised.value) == f"slack alert to AlertProvider {namespace}/down: HTTP 503"
    assert not raised.value.non_retryable


@pytest.mark.temporal
async def test_a_faulty_canary_alerts_slack_on_errors_and_teams_on_everything(
    rollouts: Rollouts, kube_api, namespace
):
    async with hook_receiver() as receiver:
        with fresh_namespace(kube_api) as ops:
            # The platform team's namespace: the shared template and the Slack provider.
            create(
                kube_api,
                ops,
                "metrictemplates",
                "MetricTemplate",
                "success-rate",
                {"query": BUILTIN_QUERIES["request-success-rate"]},
            )
            create_secret(kube_api, ops, "slack-url", receiver.url("/slack/hook"))
            create_provider(
                kube_api,
                ops,
                "on-call",
                {"type": "slack", "channel": "on-call", "secretRef": {"name": "slack-url"}},
            )
            create_provider(
                kube_api,
                namespace,
                "dev-teams",
                {"type": "msteams", "address": receiver.url("/teams")},
            )
            spec = spec_dict(
                "podinfo",
                interval="2s",
                threshold=2,
                metrics=[
                    {
                        "name": "success",
                        "templateRef": {"name": "success-rate", "namespace": ops},
                        "thresholdRange": {"min": 99},
                        "interval": "6s",
                        "minSampleCount": 3,
                    }
                ],
                alerts=[
                    {
                        "name": "on-call",
                        "severity": "error",
                        "providerRef": {"name": "on-call", "namespace": ops},
                    },
                    {"name": "dev", "severity": "info", "providerRef": {"name": "dev-teams"}},
                ],
            )
            create_app(kube_api, namespace, app_deployment("podinfo", V1))
            first = await rollouts.start(namespace, "podinfo", spec)
            assert (await first.result()).state == "Succeeded"

            new_revision(kube_api, namespace, "podinfo", V2, {ERROR_RATE: "0.5"})
            handle = await rollouts.start(namespace, "podinfo", spec)
            status = await rollouts.wait_for(handle, "Failed")

            def titles() -> list[str]:
                return [body["sections"][0]["activityTitle"] for body in receiver.bodies("/teams")]

            await eventually(titles, lambda got: len(got) >= 3, what="three Teams alerts")
            await record_if_asked(handle, "canary_rolled_back_with_alerts")
            history = decoded(json.loads((await handle.fetch_history()).to_json()))

    assert "Failed checks threshold reached 2" in history, "the alert requests are in history"
    assert receiver.base_url not in history, "no provider address ever is"
    assert "success" in (status.data["failure"] or "")
    assert titles() == [
        "New Deployment detected, initialization completed.",
        "New revision detected, progressing canary analysis.",
        "Failed checks threshold reached 2",
    ]
    [slack] = receiver.bodies("/slack/hook")
    assert slack["channel"] == "on-call"
    assert slack["attachments"][0]["text"] == "Failed checks threshold reached 2"
    assert slack["attachments"][0]["color"] == "danger"
    assert slack["attachments"][0]["author_name"] == f"podinfo.{namespace}"
