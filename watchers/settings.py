"""Settings of the webhook watcher, read from ``AUTOPILOT_WEBHOOK_*`` environment variables.

Why a settings model: every knob of the HTTP server (bind address, body limit, how long a
request waits on delivery) and every secret lives in one typed place, so ``worker_main``
can build it from the environment and tests can build it from keyword arguments.

An endpoint whose secret is unset is not mounted at all (it answers 404): an
unauthenticated endpoint that moves workflows is never the default.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Operator names are workflow type names: lower-case, dash-separated.
OPERATOR_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
#: Event types are PascalCase identifiers, as the engine declares them.
EVENT_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]{0,127}$"

#: One MiB: large enough for an Alertmanager group or a GitHub push, small enough to parse.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class WebhookSettings(BaseSettings):
    """How the webhook server listens, authenticates and maps incoming requests.

    Every field can be set from the environment with the ``AUTOPILOT_WEBHOOK_`` prefix,
    for example ``AUTOPILOT_WEBHOOK_PORT=8088``; lists and maps are given as JSON.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_WEBHOOK_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to bind; loopback by default")
    port: int = Field(default=8088, ge=0, le=65535, description="0 picks a free port")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, ge=1, description="bodies above this answer 413"
    )
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="how long a body may take to arrive before 408"
    )
    response_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="how long a request waits for delivery before answering 503",
    )
    max_inflight: int = Field(
        default=64,
        ge=1,
        description="deliveries allowed in flight at once; beyond this requests answer 503",
    )

    events_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of POST /v1/events"
    )
    alertmanager_token: SecretStr | None = Field(
        default=None, description="bearer token Alertmanager sends to POST /v1/alertmanager"
    )
    github_secret: SecretStr | None = Field(
        default=None, description="the GitHub webhook secret of POST /v1/github"
    )

    allowed_event_types: dict[str, list[str]] | None = Field(
        default=None,
        description=(
            "operator -> event types POST /v1/events accepts; unset accepts any operator "
            "and any PascalCase type"
        ),
    )

    alert_operator: str = Field(default="quarantine", pattern=OPERATOR_NAME_PATTERN)
    alert_namespace_label: str = Field(default="namespace", min_length=1)
    alert_name_labels: list[str] = Field(
        default_factory=lambda: ["deployment", "workload", "service", "app"],
        min_length=1,
        description="alert labels that name the target, first present wins",
    )

    github_operator: str = Field(default="autoroute", pattern=OPERATOR_NAME_PATTERN)
    github_services_prefix: str = Field(
        default="services/",
        min_length=1,
        description="pushed files under <prefix><namespace>/<name>.yaml are services",
    )

    @field_validator("events_secret", "alertmanager_token", "github_secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        """Treat an empty variable as unset, so an endpoint is never keyed with ''."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("github_services_prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        """Normalise the prefix to end with one slash, so ``services`` means ``services/``."""
        return value.strip("/") + "/"
