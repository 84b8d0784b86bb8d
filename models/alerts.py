"""Alerts of a canary to chat tools: ``analysis.alerts``, the ``AlertProvider`` resource, a send.

Flagger's fields and meanings, so Flagger users keep their manifests:

* a ``Canary`` lists ``analysis.alerts[]``: ``{name, severity, providerRef: {name,
  namespace}}``; ``severity`` is the least an event must have to be sent to that alert:
  ``info`` gets every event, ``warn`` warnings and errors, ``error`` errors only;
* an ``AlertProvider`` says where and how: ``type`` (``slack``, ``msteams``, ``discord``,
  ``gchat`` or ``googlechat``, ``rocket``), ``channel``, ``username``, and the webhook
  ``address``, given inline or, better, in a Secret (``secretRef``, key ``address``), with an
  optional ``proxy``.

Why the address stays a reference until the very last moment: a webhook URL *is* the
credential (whoever has it can post). The workflow only knows the provider's name; the
sending activity reads the provider and its Secret, posts, and never logs, returns or
raises the address (see ``activities/canary/alerts.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from models.flagger import FlaggerModel, ObjectRef, SecretRef, load_resource
from models.limits import MAX_NAME, MAX_TEXT, MAX_URL
from models.operator import Target

#: Kind, plural and singular of the resource (``kubectl get alertproviders``).
ALERT_PROVIDER_KIND = "AlertProvider"
ALERT_PROVIDER_PLURAL = "alertproviders"
ALERT_PROVIDER_SINGULAR = "alertprovider"

#: The Secret key that holds a provider's address (Flagger's), and its optional proxy.
SECRET_ADDRESS_KEY = "address"
SECRET_PROXY_KEY = "proxy"

#: Flagger's defaults for the providers that show a sender and a channel.
DEFAULT_USERNAME = "autopilot"
DEFAULT_CHANNEL = "general"

#: The longest alert message and field value sent (chat tools cut long posts anyway).
MAX_ALERT_TEXT = 2000
#: Fields (facts) of one alert.
MAX_ALERT_FIELDS = 20


class AlertSeverity(StrEnum):
    """How serious an event is, and the least an alert subscribes to."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"


_RANK = {AlertSeverity.INFO: 0, AlertSeverity.WARN: 1, AlertSeverity.ERROR: 2}


def reaches(subscribed: AlertSeverity, event: AlertSeverity) -> bool:
    """Whether an event of ``event`` severity goes to an alert of ``subscribed`` severity.

    Flagger's documented rule: ``info`` gets everything, ``warn`` warnings and errors,
    ``error`` errors only.
    """
    return _RANK[event] >= _RANK[subscribed]


class CanaryAlert(FlaggerModel):
    """One entry of ``analysis.alerts``: a provider and the least severity it gets."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    severity: AlertSeverity = Field(
        default=AlertSeverity.INFO, description="info (every event) | warn | error"
    )
    provider_ref: ObjectRef = Field(
        description="the AlertProvider; namespace default: the canary's"
    )


class AlertProviderType(StrEnum):
    """The chat tools a provider posts to, each with its own payload format."""

    SLACK = "slack"
    MSTEAMS = "msteams"
    DISCORD = "discord"
    GCHAT = "gchat"  #: Flagger's name for Google Chat
    GOOGLECHAT = "googlechat"
    ROCKET = "rocket"


class AlertProviderSpec(FlaggerModel):
    """The ``spec`` of an ``AlertProvider``: the chat tool and its incoming-webhook address."""

    type: AlertProviderType
    channel: str | None = Field(
        default=None, max_length=MAX_NAME, description=f"default {DEFAULT_CHANNEL}"
    )
    username: str | None = Field(
        default=None, max_length=MAX_NAME, description=f"default {DEFAULT_USERNAME}"
    )
    address: str | None = Field(
        default=None,
        max_length=MAX_URL,
        pattern=r"^https?://",
        description="webhook URL; prefer secretRef (a webhook URL is a credential)",
    )
    proxy: str | None = Field(
        default=None, max_length=MAX_URL, pattern=r"^https?://", description="HTTP(S) proxy URL"
    )
    secret_ref: SecretRef | None = Field(
        default=None, description="a Secret with the key 'address' (and optionally 'proxy')"
    )

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        known = [kind.value for kind in AlertProviderType]
        if isinstance(value, str) and value not in known:
            raise ValueError(
                f"{value!r} is not supported by Autopilot; use one of: {', '.join(known)}"
            )
        return value

    @model_validator(mode="after")
    def _has_an_address(self) -> AlertProviderSpec:
        if self.address is None and self.secret_ref is None:
            raise ValueError("set address or secretRef (a Secret with the key 'address')")
        return self


def load_alert_provider(source: Mapping[str, Any]) -> AlertProviderSpec:
    """An ``AlertProvider`` manifest (ours or Flagger's) or its bare spec.

    Raises:
        models.flagger.ResourceError: every problem, each naming its field path.
    """
    return load_resource(source, ALERT_PROVIDER_KIND, AlertProviderSpec)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_ALERT_TEXT:
        return value[: MAX_ALERT_TEXT - 1] + "…"
    return value


class AlertField(BaseModel):
    """One fact of an alert (Flagger's metadata: target, threshold, deadline, routing)."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    value: str = Field(max_length=MAX_ALERT_TEXT)

    @field_validator("value", mode="before")
    @classmethod
    def _cut_value(cls, value: Any) -> Any:
        return _cut(value)


class SendAlert(BaseModel):
    """The argument of ``canary.send_alert``: one event for one alert of one rollout.

    The provider is a reference (``alert.provider_ref``), never an address: the activity
    resolves it, so no webhook URL ever enters the workflow's history. ``key`` is the same
    on every retry of the same event, so a retry never posts twice.
    """

    workflow_id: str = Field(min_length=1, max_length=512)
    target: Target
    key: str = Field(min_length=1, max_length=MAX_TEXT)
    alert: CanaryAlert
    severity: AlertSeverity
    message: str = Field(min_length=1, max_length=MAX_ALERT_TEXT)
    fields: list[AlertField] = Field(default_factory=list, max_length=MAX_ALERT_FIELDS)

    @field_validator("message", mode="before")
    @classmethod
    def _cut_message(cls, value: Any) -> Any:
        return _cut(value)


class AlertSent(BaseModel):
    """What ``canary.send_alert`` did: posted, skipped as a repeat, or failed and why."""

    alert: str
    provider: str = Field(description="namespace/name of the AlertProvider")
    type: str = ""
    status: int | None = Field(default=None, description="the HTTP status of the post")
    sent: bool = False
    repeat: bool = Field(default=False, description="this key was already sent")
    message: str = ""
