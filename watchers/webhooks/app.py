"""The aiohttp application: routes, refusals as JSON, and the hand-off to delivery.

Every handler is a straight line - read the body within the limit, authenticate,
validate, map, deliver - and any step may raise :class:`~watchers.webhooks.errors.Rejection`;
one middleware turns that into the JSON answer and counts it. Only endpoints with a
configured secret are mounted.

Delivery runs in its own task and the request waits for it at most
``response_timeout_s``. Past that the answer is 503 while delivery goes on in the
background: the sender resends, and the workflow drops the duplicate by event ID. So a
slow Temporal costs a retry, never a lost event, and never a request held for minutes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from service.settings import WebhookSettings
from watchers.delivery import Delivery, DeliveryResult, Outcome
from watchers.webhooks import alertmanager, events, github
from watchers.webhooks.auth import verify_bearer, verify_signature
from watchers.webhooks.body import read_body
from watchers.webhooks.errors import FieldProblem, Rejection, bad_request
from watchers.webhooks.routing import Routed, parse_body

logger = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
ALERTMANAGER_PATH = "/v1/alertmanager"
GITHUB_PATH = "/v1/github"
EVENTS_SIGNATURE_HEADER = "X-Autopilot-Signature"
GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITHUB_EVENT_HEADER = "X-GitHub-Event"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"
_KNOWN_PATHS = frozenset({EVENTS_PATH, ALERTMANAGER_PATH, GITHUB_PATH, "/healthz", "/metrics"})
#: Seconds a sender is asked to wait before resending after a 503.
RETRY_AFTER_S = 5


class WebhookMetrics:
    """Request counters of the webhook server, one set per registry."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, WebhookMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "autopilot_webhook_requests",
            "Webhook requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> WebhookMetrics:
        """The metrics registered in ``registry``, created on first use."""
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics


@dataclass
class WebhookContext:
    """What the handlers share: settings, delivery, metrics and deliveries in flight."""

    settings: WebhookSettings
    delivery: Delivery
    registry: CollectorRegistry
    metrics: WebhookMetrics
    inflight: set[asyncio.Task[list[DeliveryResult]]] = field(default_factory=set)

    async def dispatch(self, routed: Routed, *, single: bool = False) -> web.Response:
        """Deliver ``routed`` and answer 202, or 503 when delivery is down or too slow.

        Args:
            routed: the events one request maps to.
            single: the request carries exactly one event that the caller addressed
                directly, so a missing workflow is answered with 404 instead of 202.
        """
        ignored = [{"item": item.item, "reason": item.reason} for item in routed.ignored]
        if not routed.requests:
            return web.json_response({"accepted": 0, "results": [], "ignored": ignored}, status=202)
        if len(self.inflight) >= self.settings.max_inflight:
            raise _unavailable("busy", "too many deliveries in flight; resend later")
        task = asyncio.create_task(self.delivery.deliver_many(routed.requests))
        self.inflight.add(task)
        task.add_done_callback(self._forget)
        timeout = self.settings.response_timeout_s
        try:
            results = await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            raise _unavailable(
                "delivery_timeout",
                f"Temporal did not confirm within {timeout:g}s; delivery goes on in the "
                "background and resending is safe (events are deduplicated by id)",
            ) from None
        body: dict[str, Any] = {
            "accepted": sum(result.outcome is Outcome.DELIVERED for result in results),
            "results": [result.as_dict() for result in results],
            "ignored": ignored,
        }
        failed = [result for result in results if result.outcome is Outcome.FAILED]
        if failed:
            body.update(error="delivery_unavailable", message=failed[0].detail)
            return web.json_response(body, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        if single and results[0].outcome is Outcome.NO_SUCH_WORKFLOW:
            body.update(
                error="no_such_workflow",
                message=f"no workflow {results[0].workflow_id} is running; "
                "send a spec to start one",
            )
            return web.json_response(body, status=404)
        return web.json_response(body, status=202)

    def _forget(self, task: asyncio.Task[list[DeliveryResult]]) -> None:
        self.inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("delivery task failed", exc_info=task.exception())


def _unavailable(code: str, message: str) -> Rejection:
    return Rejection(503, code, message, headers={"Retry-After": str(RETRY_AFTER_S)})


CONTEXT = web.AppKey("autopilot_webhook_context", WebhookContext)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _answer_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn refusals (ours and the router's) into JSON, and count every answer."""
    resource = request.match_info.route.resource
    # Unmatched paths share one label: fuzzed URLs must not grow the series without bound.
    if resource is not None:
        endpoint = resource.canonical
    else:
        endpoint = request.path if request.path in _KNOWN_PATHS else "unmatched"
    response: web.StreamResponse
    try:
        response = await handler(request)
    except Rejection as rejection:
        response = rejection.response()
    except web.HTTPException as error:
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
        response = web.json_response(
            {"error": error.reason.lower().replace(" ", "_"), "message": error.reason},
            status=error.status,
            headers=headers,
        )
    except Exception:
        logger.exception("webhook handler failed on %s %s", request.method, request.path)
        response = web.json_response(
            {"error": "internal_error", "message": "see the server log"}, status=500
        )
    request.app[CONTEXT].metrics.requests.labels(endpoint, str(response.status)).inc()
    return response


async def _post_events(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    settings = context.settings
    assert settings.events_secret is not None  # mounted only with a secret
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    signature = request.headers.get(EVENTS_SIGNATURE_HEADER)
    verify_signature(EVENTS_SIGNATURE_HEADER, signature, settings.events_secret, body)
    event = parse_body(events.GenericEvent, body, what="event")
    routed = events.route_event(event, settings.allowed_event_types)
    return await context.dispatch(routed, single=True)


async def _post_alertmanager(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    settings = context.settings
    assert settings.alertmanager_token is not None  # mounted only with a token
    # A bearer token needs no body: refuse strangers before reading a byte.
    verify_bearer(request.headers.get("Authorization"), settings.alertmanager_token)
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    webhook = parse_body(alertmanager.AlertmanagerWebhook, body, what="Alertmanager payload")
    if webhook.truncated_alerts:
        logger.warning(
            "Alertmanager truncated %d alerts of group %s; raise max_alerts or narrow the route",
            webhook.truncated_alerts,
            webhook.group_key,
        )
    return await context.dispatch(alertmanager.route_alerts(webhook, settings))


async def _post_github(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    settings = context.settings
    assert settings.github_secret is not None  # mounted only with a secret
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    signature = request.headers.get(GITHUB_SIGNATURE_HEADER)
    verify_signature(GITHUB_SIGNATURE_HEADER, signature, settings.github_secret, body)
    event_name = request.headers.get(GITHUB_EVENT_HEADER, "")
    if event_name not in github.SUPPORTED_EVENTS:
        supported = ", ".join(github.SUPPORTED_EVENTS)
        shown = repr(event_name[:64]) if event_name else "missing"
        raise bad_request(
            f"unsupported {GITHUB_EVENT_HEADER} {shown}; this webhook handles {supported}",
            GITHUB_EVENT_HEADER,
        )
    if request.content_type == "application/x-www-form-urlencoded":
        raise bad_request("set the webhook's content type to application/json", "Content-Type")
    if event_name == "ping":
        ping = parse_body(github.PingEvent, body, what="GitHub ping")
        return web.json_response({"pong": True, "zen": ping.zen}, status=200)
    delivery_id = request.headers.get(GITHUB_DELIVERY_HEADER, "")
    if not github.DELIVERY_ID.fullmatch(delivery_id):
        raise Rejection(
            400,
            "invalid_request",
            f"{GITHUB_DELIVERY_HEADER} must be GitHub's delivery GUID",
            [FieldProblem(GITHUB_DELIVERY_HEADER, "missing or not a GUID")],
        )
    routed: Routed
    if event_name == "push":
        push = parse_body(github.PushEvent, body, what="GitHub push")
        routed = github.route_push(push, delivery_id, settings)
    else:
        pull = parse_body(github.PullRequestEvent, body, what="GitHub pull_request")
        routed = github.route_pull_request(pull, delivery_id)
    return await context.dispatch(routed)


async def _healthz(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    return web.json_response({"status": "ok", "inflight": len(context.inflight)})


async def _metrics(request: web.Request) -> web.StreamResponse:
    registry = request.app[CONTEXT].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _stop_deliveries(app: web.Application) -> None:
    """Cancel deliveries still running: their senders were told 503 and will resend."""
    inflight = list(app[CONTEXT].inflight)
    for task in inflight:
        task.cancel()
    await asyncio.gather(*inflight, return_exceptions=True)


def create_app(
    settings: WebhookSettings,
    delivery: Delivery,
    *,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """Build the webhook application.

    Args:
        settings: limits, secrets and mapping rules.
        delivery: where accepted events go.
        registry: where metrics are registered and read by ``/metrics``; the delivery's
            registry by default, so one scrape shows both.

    Returns:
        An application with ``/healthz``, ``/metrics`` and every endpoint whose secret is set.
    """
    registry = registry if registry is not None else delivery.metrics.registry
    # Our own reader enforces the limit; aiohttp's is only a backstop for other readers.
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_answer_as_json])
    app[CONTEXT] = WebhookContext(
        settings=settings,
        delivery=delivery,
        registry=registry,
        metrics=WebhookMetrics.for_registry(registry),
    )
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    mounted = {
        EVENTS_PATH: (settings.events_secret, _post_events),
        ALERTMANAGER_PATH: (settings.alertmanager_token, _post_alertmanager),
        GITHUB_PATH: (settings.github_secret, _post_github),
    }
    for path, (secret, handler) in mounted.items():
        if secret is None:
            logger.warning("%s is not mounted: its secret is not set", path)
            continue
        app.router.add_post(path, handler)
    app.on_cleanup.append(_stop_deliveries)
    return app
