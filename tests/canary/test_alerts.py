"""Alerts to chat tools: who gets which event, and what each tool receives.

The decisions are the workflow's own (``workflows/canary/alerts.py``, taken on the engine's
decision of a transition); the posts go from the activity's own sender to a real HTTP
receiver on loopback, which checks each tool's payload structure. No cluster here:
``test_alerts_cluster.py`` reads providers and Secrets from the API server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from activities.canary import alerts as sender
from cli.main import app
from models.alerts import (
    AlertProviderSpec,
    AlertSeverity,
    CanaryAlert,
    SendAlert,
    load_alert_provider,
    reaches,
)
from models.canary import (
    AnalysisResult,
    CanaryData,
    CanarySpec,
    CanarySpecError,
    MetricResult,
    MetricStatus,
)
from models.flagger import ResourceError
from models.operator import Target
from tests.canary.hooks import hook_receiver
from tests.canary.specs import make_spec
from workflows.canary import alerts, canary
from workflows.engine import Ctx, Occasion, decision

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TARGET = Target(namespace="shop", name="checkout")
MANIFESTS = Path(__file__).parent / "manifests"

#: One alert per severity, as a team subscribes: everything, warnings up, errors only.
SUBSCRIBED = [
    {"name": "all", "severity": "info", "providerRef": {"name": "chat"}},
    {"name": "warnings", "severity": "warn", "providerRef": {"name": "chat"}},
    {"name": "pager", "severity": "error", "providerRef": {"name": "pager", "namespace": "ops"}},
]


def sent(state: str, event: Any, spec: CanarySpec, data: CanaryData) -> list[SendAlert]:
    """The alerts of the transition the machine takes from ``state`` on ``event``."""
    taken = decision.decide(canary, state, event, spec=spec, data=data, now=NOW)
    assert taken is not None and isinstance(taken.data, CanaryData)
    before = Ctx(spec=spec, data=data, state=state, now=NOW, event=event)
    after = Ctx(spec=spec, data=taken.data, state=taken.target, now=NOW, event=event)
    return alerts.alerts(before, after, Occasion("canary/shop/checkout", TARGET, "evt-1"))


def analysis(value: float, *, rollback: bool = False) -> AnalysisResult:
    status = MetricStatus.PASS if value >= 99 else MetricStatus.FAIL
    metric = MetricResult(name="request-success-rate", status=status, value=value, min=99)
    return AnalysisResult(at=NOW, metrics=[metric], rollback_requested=rollback)


# --- severities ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscribed", "event", "gets"),
    [
        ("info", "info", True),
        ("info", "warn", True),
        ("info", "error", True),
        ("warn", "info", False),
        ("warn", "warn", True),
        ("warn", "error", True),
        ("error", "info", False),
        ("error", "warn", False),
        ("error", "error", True),
    ],
)
def test_info_gets_everything_warn_warnings_and_errors_error_only_errors(subscribed, event, gets):
    assert reaches(AlertSeverity(subscribed), AlertSeverity(event)) is gets


def test_a_rollback_at_the_threshold_is_an_error_every_subscriber_gets():
    spec = make_spec(alerts=SUBSCRIBED)
    data = CanaryData(canary_weight=10, failed_checks=1)

    posted = sent("Analysing", analysis(48.5), spec, data)

    assert [(a.alert.name, a.severity, a.message) for a in posted] == [
        ("all", "error", "Failed checks threshold reached 2"),
        ("warnings", "error", "Failed checks threshold reached 2"),
        ("pager", "error", "Failed checks threshold reached 2"),
    ]
    assert len({a.key for a in posted}) == 3, "one dedupe key per alert"


def test_a_failure_whose_threshold_was_already_told_is_not_told_again_as_canary_failed():
    """Seen under load: after "Failed checks threshold reached 2", another transition into
    RollingBack with the same two failed checks sent "Canary failed: 2 failed checks"."""
    spec = make_spec(alerts=SUBSCRIBED)
    told = CanaryData(canary_weight=10, failed_checks=2, failure="2 failed checks (threshold 2)")
    before = Ctx(spec=spec, data=told, state="Progressing", now=NOW, event=analysis(48.5))
    after = Ctx(spec=spec, data=told, state="RollingBack", now=NOW, event=analysis(48.5))

    assert alerts.alerts(before, after, Occasion("canary/shop/checkout", TARGET, "evt-2")) == []


def test_a_failed_check_below_the_threshold_alerts_nobody():
    spec = make_spec(alerts=SUBSCRIBED)

    assert sent("Analysing", analysis(48.5), spec, CanaryData(canary_weight=10)) == []


def test_a_rollback_webhook_is_a_warning_the_pager_does_not_get():
    spec = make_spec(alerts=SUBSCRIBED)

    posted = sent("Analysing", analysis(100, rollback=True), spec, CanaryData(canary_weight=10))

    assert [(a.alert.name, a.message) for a in posted] == [
        ("all", "Rolling back manual webhook invoked"),
        ("warnings", "Rolling back manual webhook invoked"),
    ]


def test_a_promotion_goes_only_to_info_subscribers():
    spec = make_spec(alerts=SUBSCRIBED)
    from models.canary import Finalised

    posted = sent("Finalising", Finalised(), spec, CanaryData(canary_weight=0))

    assert [(a.alert.name, a.severity, a.message) for a in posted] == [
        ("all", "info", "Canary analysis completed successfully, promotion finished.")
    ]


def test_a_new_revision_carries_flaggers_metadata():
    from models.canary import Initialized

    spec = make_spec(alerts=SUBSCRIBED[:1])
    event = Initialized(revision="b", stable_revision="a", needs_rollout=True)

    [posted] = sent("Initializing", event, spec, CanaryData())

    assert posted.message == "New revision detected, progressing canary analysis."
    assert {f.name: f.value for f in posted.fields} == {
        "Target": "Deployment/checkout.shop",
        "Failed checks threshold": "2",
        "Progress deadline": "600s",
        "Traffic routing": "Weight step: 10 max: 50",
    }


def test_a_gate_warns_once_per_step_however_often_the_rollout_comes_back_to_it():
    spec = make_spec(maxWeight=20, alerts=SUBSCRIBED[1:2], gates={"beforePromotion": True})
    data = CanaryData(canary_weight=20, step=1, revision="b")

    [first] = sent("Analysing", analysis(100), spec, data)
    [again] = sent("Analysing", analysis(100), spec, data.model_copy(update={"iterations": 5}))

    assert first.message == "Canary promotion is waiting for approval."
    assert first.severity == "warn"
    assert first.key == again.key, "the sender posts it once"


def test_two_alerts_of_one_name_are_refused_naming_the_field():
    alert = {"name": "chat", "providerRef": {"name": "chat"}}
    with pytest.raises(CanarySpecError) as caught:
        make_spec(alerts=[alert, alert])

    assert caught.value.problems == ["analysis.alerts: alert names must be unique; repeated: chat"]


def test_a_spec_without_alerts_sends_nothing():
    data = CanaryData(canary_weight=10, failed_checks=1)

    assert sent("Analysing", analysis(48.5), make_spec(), data) == []


# --- the five formats, posted to a real receiver ----------------------------------------


def request(severity: str = "error") -> SendAlert:
    return SendAlert(
        workflow_id="canary/shop/checkout",
        target=TARGET,
        key="evt-1:all",
        alert=CanaryAlert.model_validate({"name": "all", "providerRef": {"name": "chat"}}),
        severity=AlertSeverity(severity),
        message="Failed checks threshold reached 2",
        fields=[{"name": "Target", "value": "Deployment/checkout.shop"}],
    )


async def posted_as(kind: str, severity: str = "error", **spec: str) -> tuple[str, dict[str, Any]]:
    """What a receiver got from one alert to a provider of ``kind``: its path and body."""
    async with hook_receiver() as receiver:
        provider = AlertProviderSpec.model_validate({"type": kind, **spec, "address": "http://x"})
        status = await sender.post(provider, receiver.url(f"/{kind}"), None, request(severity))
        assert status == 200
        [(path, body)] = receiver.received
    return path, body


async def test_slack_gets_flaggers_attachment_posted_as_its_channel_and_username():
    path, body = await posted_as("slack", channel="on-call", username="release-bot")

    assert path == "/slack"
    assert (body["channel"], body["username"]) == ("on-call", "release-bot")
    [attachment] = body["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["author_name"] == "checkout.shop"
    assert attachment["text"] == "Failed checks threshold reached 2"
    assert attachment["fields"] == [
        {"title": "Target", "value": "Deployment/checkout.shop", "short": False}
    ]


async def test_slack_defaults_its_channel_and_username_and_colours_info_good():
    _, body = await posted_as("slack", severity="info")

    assert (body["channel"], body["username"]) == ("general", "autopilot")
    assert body["attachments"][0]["color"] == "good"


async def test_discord_gets_the_slack_payload_on_its_slack_compatible_endpoint():
    path, body = await posted_as("discord")

    assert path == "/discord/slack"
    assert body["attachments"][0]["text"] == "Failed checks threshold reached 2"


async def test_rocket_gets_the_slack_payload_in_its_own_colours():
    _, body = await posted_as("rocket")

    assert body["attachments"][0]["color"] == "#FF0000"
    assert body["attachments"][0]["author_name"] == "checkout.shop"


async def test_teams_gets_a_message_card_with_the_fields_as_facts():
    _, body = await posted_as("msteams")

    assert (body["@type"], body["@context"]) == ("MessageCard", "http://schema.org/extensions")
    assert body["themeColor"] == "FF0000"
    assert body["summary"] == "checkout.shop"
    [section] = body["sections"]
    assert section["activityTitle"] == "Failed checks threshold reached 2"
    assert section["activitySubtitle"] == "checkout.shop"
    assert section["facts"] == [{"name": "Target", "value": "Deployment/checkout.shop"}]


@pytest.mark.parametrize("kind", ["gchat", "googlechat"])
async def test_google_chat_gets_a_card_with_a_header_the_message_and_each_field(kind):
    _, body = await posted_as(kind)

    [card] = body["cards"]
    assert card["header"]["subtitle"] == "checkout.shop"
    message, field = (s["widgets"][0]["textParagraph"]["text"] for s in card["sections"])
    assert "Failed checks threshold reached 2" in message
    assert field.startswith("Target<br>") and "Deployment/checkout.shop" in field


# --- providers, and Flagger's manifests ---------------------------------------------------


def test_a_provider_of_a_type_autopilot_does_not_post_to_is_refused_naming_the_field():
    manifest = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "x"},
        "spec": {"type": "pagerduty", "address": "https://example.com"},
    }
    with pytest.raises(ResourceError) as caught:
        load_alert_provider(manifest)

    [problem] = caught.value.problems
    assert problem.startswith("spec.type: 'pagerduty' is not supported by Autopilot")


def test_a_provider_needs_an_address_or_a_secret():
    with pytest.raises(ResourceError) as caught:
        load_alert_provider({"type": "slack"})

    assert caught.value.problems == [
        "(spec): set address or secretRef (a Secret with the key 'address')"
    ]


def test_a_flagger_manifest_with_template_refs_alerts_and_their_resources_passes_lint():
    manifest = MANIFESTS / "flagger_alerts.yaml"

    result = CliRunner().invoke(app, ["lint", str(manifest)])

    assert result.exit_code == 0, result.output
    assert "4 document(s) checked, 0 invalid" in result.output
