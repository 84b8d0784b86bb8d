"""Alertmanager notifications as the webhook receives them, and their delivery.

Events reach the quarantine workflow exactly the way the webhook sends them: the body is
mapped by ``watchers.webhooks.alertmanager.route_alerts`` and handed to
``watchers.delivery.Delivery`` (signal-with-start for a firing alert). Only the HTTP hop
is skipped; ``tests/test_webhooks.py`` covers that.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from service.settings import WebhookSettings
from watchers.delivery import Delivery, DeliveryRequest, DeliveryResult, Outcome
from watchers.webhooks.alertmanager import AlertmanagerWebhook, route_alerts

STARTS_AT = "2025-03-14T09:26:53.589Z"


def alert(
    namespace: str,
    name: str,
    *,
    status: str = "firing",
    alertname: str = "CryptoMinerDetected",
    severity: str = "critical",
    starts_at: str = STARTS_AT,
    summary: str = "outbound traffic to a known mining pool",
) -> dict[str, Any]:
    """One alert of an Alertmanager notification (version 4) naming a Deployment."""
    fingerprint = hashlib.sha256(f"{namespace}/{name}/{alertname}".encode()).hexdigest()[:16]
    body: dict[str, Any] = {
        "status": status,
        "labels": {
            "alertname": alertname,
            "severity": severity,
            "namespace": namespace,
            "deployment": name,
            "autopilot": "quarantine",
        },
        "annotations": {"summary": summary},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }
    if status == "resolved":
        body["endsAt"] = datetime.now(UTC).isoformat()
    return body


def notification(*alerts: dict[str, Any]) -> AlertmanagerWebhook:
    """The webhook body that carries ``alerts``."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return AlertmanagerWebhook.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="CryptoMinerDetected"}',
            "status": status,
            "receiver": "autopilot-quarantine",
            "externalURL": "http://alertmanager.example",
            "alerts": list(alerts),
        }
    )


async def deliver(
    client: Client,
    task_queue: str,
    *alerts: dict[str, Any],
    spec: dict[str, Any] | None = None,
) -> list[DeliveryResult]:
    """Map alerts as the webhook does and deliver them; ``spec`` replaces the webhook's ``{}``."""
    routed = route_alerts(notification(*alerts), WebhookSettings())
    assert not routed.ignored, routed.ignored
    requests = [
        DeliveryRequest(r.operator, r.target, r.envelope, spec)
        if spec is not None and r.start_spec is not None
        else r
        for r in routed.requests
    ]
    results = await Delivery(client, task_queue=task_queue).deliver_many(requests)
    assert all(r.outcome is Outcome.DELIVERED for r in results), [r.as_dict() for r in results]
    return results
