"""``POST /v1/alertmanager``: Alertmanager's webhook (payload version 4) to quarantine events.

Each alert whose labels name a target becomes one event for the alert operator
("quarantine" by default):

* a **firing** alert becomes ``SecurityAlert`` and is delivered with signal-with-start
  (spec ``{}``), so the first alert for a workload opens its quarantine;
* a **resolved** alert becomes ``AlertResolved`` and only signals a running workflow.

The target is ``labels[namespace]`` plus the first non-empty label among
``deployment``, ``workload``, ``service``, ``app`` (both lists are settings). Alertmanager
re-sends a firing alert every ``repeat_interval`` with the same ``fingerprint`` and
``startsAt``, so the event ID ``alertmanager:<fingerprint>:<startsAt>:<status>`` is the same
on every resend and the workflow moves once; a new firing of the same alert has a new
``startsAt`` and is a new event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.operator import EventEnvelope
from service.settings import WebhookSettings
from watchers.delivery import DeliveryRequest
from watchers.webhooks.routing import Ignored, Routed, describe, make_target

#: ``EventEnvelope.source`` of events from this endpoint.
SOURCE = "webhook/alertmanager"
FIRING_EVENT = "SecurityAlert"
RESOLVED_EVENT = "AlertResolved"

AlertStatus = Literal["firing", "resolved"]


class Alert(BaseModel):
    """One alert of an Alertmanager notification; fields we do not use are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9]+$")


class AlertmanagerWebhook(BaseModel):
    """The body Alertmanager posts to a ``webhook_configs`` receiver (version "4")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: AlertStatus
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert]


def timestamp(moment: datetime) -> str:
    """A stable text form of a time, in UTC with microseconds, for IDs and payloads."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_id(alert: Alert) -> str:
    """``alertmanager:<fingerprint>:<startsAt>:<status>``, the same on every resend."""
    return f"alertmanager:{alert.fingerprint}:{timestamp(alert.starts_at)}:{alert.status}"


def _payload(alert: Alert, webhook: AlertmanagerWebhook) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "alertname": alert.labels.get("alertname", ""),
        "severity": alert.labels.get("severity", ""),
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": timestamp(alert.starts_at),
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
        "receiver": webhook.receiver,
    }
    if alert.status == "resolved" and alert.ends_at is not None:
        payload["ends_at"] = timestamp(alert.ends_at)
    return payload


def route_alerts(
    webhook: AlertmanagerWebhook, settings: WebhookSettings, now: datetime | None = None
) -> Routed:
    """Map each alert that names a target to a ``SecurityAlert`` or ``AlertResolved``.

    Alerts naming no target, or an invalid one, are listed as ignored, not refused: one
    unrelated alert in a group must not stop the others.
    """
    now = now or datetime.now(UTC)
    routed = Routed()
    wanted = ", ".join(settings.alert_name_labels)
    for index, alert in enumerate(webhook.alerts):
        item = f"alerts.{index} ({alert.fingerprint})"
        namespace = alert.labels.get(settings.alert_namespace_label, "")
        name = next(
            (alert.labels[key] for key in settings.alert_name_labels if alert.labels.get(key)), ""
        )
        if not namespace or not name:
            reason = (
                f"labels name no target: need {settings.alert_namespace_label!r} "
                f"and one of {wanted}"
            )
            routed.ignored.append(Ignored(item, reason))
            continue
        target = make_target(namespace, name)
        if isinstance(target, list):
            routed.ignored.append(Ignored(item, f"labels name no valid target: {describe(target)}"))
            continue
        firing = alert.status == "firing"
        envelope = EventEnvelope(
            id=event_id(alert),
            type=FIRING_EVENT if firing else RESOLVED_EVENT,
            payload=_payload(alert, webhook),
            source=SOURCE,
            observed_at=now,
        )
        start_spec: dict[str, Any] | None = {} if firing else None
        routed.requests.append(
            DeliveryRequest(settings.alert_operator, target, envelope, start_spec)
        )
    return routed
