"""The quarantine operator's contract without any server: spec, events, names, details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from models.errors import describe
from models.operator import Target
from models.quarantine import (
    AlertRecord,
    AlertResolved,
    QuarantineData,
    QuarantineSpec,
    SecurityAlert,
    evidence_name,
    policy_name,
)
from service.settings import WebhookSettings
from tests.quarantine.alerts import alert, notification
from watchers.webhooks.alertmanager import route_alerts
from workflows.engine import Ctx
from workflows.quarantine import details, escalate_after, quarantine
from workflows.registry import operators

NOW = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)


def spec_error(**fields: object) -> str:
    with pytest.raises(ValidationError) as error:
        QuarantineSpec.model_validate(fields)
    return describe(error.value, "spec")


def test_an_empty_spec_as_the_webhook_sends_it_escalates_after_four_hours():
    spec = QuarantineSpec.model_validate({})
    assert spec.escalate_after == timedelta(hours=4)
    assert spec.notify_url is None and spec.selector is None and spec.exempt_namespaces == []


def test_the_spec_is_written_in_camel_case_with_go_durations():
    spec = QuarantineSpec.model_validate(
        {
            "escalateAfter": "30m",
            "notifyUrl": "https://hooks.example/sec",
            "exemptNamespaces": ["forensics"],
        }
    )
    assert spec.escalate_after == timedelta(minutes=30)
    assert spec.model_dump(mode="json", by_alias=True)["escalateAfter"] == "30m"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"escalateAftr": "1h"}, "spec.escalateAftr: Extra inputs are not permitted"),
        ({"escalateAfter": "soon"}, "spec.escalateAfter"),
        ({"escalateAfter": "0s"}, "must be longer than 0s"),
        ({"notifyUrl": "ftp://files.example/x"}, "is not an http:// or https:// URL"),
        ({"selector": {}}, "an empty selector would match every pod"),
        ({"selector": {"app": "bad value!"}}, "is not a valid label selector"),
        ({"exemptNamespaces": ["Forensics"]}, "is not a namespace name"),
    ],
)
def test_a_wrong_spec_field_is_refused_with_the_field_named(fields, message):
    assert message in spec_error(**fields)


def test_the_alert_events_read_exactly_what_the_alertmanager_webhook_sends():
    firing, resolved = (
        route_alerts(notification(alert("shop", "cart", status=s)), WebhookSettings()).requests[0]
        for s in ("firing", "resolved")
    )
    assert (firing.envelope.type, resolved.envelope.type) == ("SecurityAlert", "AlertResolved")
    assert firing.start_spec == {} and resolved.start_spec is None
    event = SecurityAlert.model_validate(firing.envelope.payload)
    assert (event.alertname, event.severity) == ("CryptoMinerDetected", "critical")
    assert event.summary == "outbound traffic to a known mining pool"
    assert event.starts_at == datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
    ended = AlertResolved.model_validate(resolved.envelope.payload)
    assert ended.fingerprint == event.fingerprint and ended.ends_at is not None


def test_an_alert_with_fields_the_webhook_may_add_later_is_still_taken():
    event = SecurityAlert.model_validate({"alertname": "X", "cluster": "eu-1"})
    assert event.alertname == "X"


def test_object_names_stay_within_kubernetes_limits_for_the_longest_targets():
    short = Target(namespace="shop", name="cart")
    assert (policy_name(short), evidence_name(short)) == (
        "cart-quarantine",
        "cart-quarantine-evidence",
    )
    longest = Target(namespace="shop", name="a" * 253)
    assert len(policy_name(longest)) <= 253 and len(evidence_name(longest)) <= 253
    assert policy_name(longest) != policy_name(Target(namespace="shop", name="a" * 252 + "b"))


def test_the_quarantine_operator_is_registered_and_its_definition_is_valid():
    assert operators()["quarantine"] is quarantine
    assert quarantine.check() is quarantine
    assert quarantine.commands_in("Detected") == ["pause"]
    assert quarantine.commands_in("Isolated") == ["escalate", "pause", "release", "remediate"]
    assert quarantine.commands_in("Escalated") == ["pause", "release", "remediate"]


def ctx(data: QuarantineData, spec: QuarantineSpec | None = None, now: datetime = NOW) -> Ctx:
    return Ctx(spec=spec or QuarantineSpec(), data=data, state="Isolated", now=now)


def test_escalation_is_due_escalate_after_from_when_isolation_began():
    data = QuarantineData(quarantined_at=NOW - timedelta(hours=1))
    assert escalate_after(ctx(data)) == timedelta(hours=3)
    assert escalate_after(ctx(data, now=NOW + timedelta(hours=5))) == timedelta(0)


def test_details_name_the_alert_its_severity_and_since_when_the_workload_is_isolated():
    data = QuarantineData(
        alerts=[AlertRecord(alertname="CryptoMinerDetected", severity="critical", received_at=NOW)],
        quarantined_at=NOW,
        policy="cart-quarantine",
        selector={"app": "cart"},
    )
    text = details(ctx(data))
    assert "alert: **CryptoMinerDetected** (critical)" in text
    assert "isolated since: 2025-03-14T10:00:00+00:00" in text
    assert "policy: `cart-quarantine` (DENY `app=cart`)" in text
    assert details(ctx(QuarantineData())) == "waiting for a SecurityAlert"
