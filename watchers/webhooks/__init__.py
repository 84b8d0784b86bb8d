"""The webhook watcher: HTTP endpoints that turn outside events into operator signals.

Three senders are understood - a generic signed event (``POST /v1/events``),
Alertmanager (``POST /v1/alertmanager``) and GitHub (``POST /v1/github``) - and each is
authenticated, size-limited, validated against a pydantic model, mapped to
:class:`~models.operator.EventEnvelope` values with deterministic IDs, and handed to
:class:`~watchers.delivery.Delivery`. See ``docs/webhooks.md``.

Start it beside the worker with :func:`serve_webhooks`, or build the bare application with
:func:`create_app` (tests do).
"""

from service.settings import WebhookSettings
from watchers.webhooks.app import create_app
from watchers.webhooks.auth import sign
from watchers.webhooks.server import WebhookServer, serve_webhooks

__all__ = ["WebhookServer", "WebhookSettings", "create_app", "serve_webhooks", "sign"]
