"""``canary.send_alert``: post one canary alert to a chat tool, in that tool's own format.

The workflow decides what to say (``workflows/canary/alerts.py``) and names the provider;
this activity finds the ``AlertProvider`` (the ref's namespace, else the canary's; our API
group, else Flagger's), takes the address from the provider or, better, from its Secret (key
``address``, and ``proxy`` if set), and posts the payload of the provider's ``type``:

* ``slack``: Flagger's message with one attachment (colour, ``author_name`` = the target,
  the text, the fields), posted as ``channel`` by ``username``;
* ``discord``: the same Slack payload, posted to the webhook's Slack-compatible endpoint
  (``.../slack`` appended, as Flagger does);
* ``rocket``: the Slack payload with Rocket.Chat's colours;
* ``msteams``: an Office 365 connector ``MessageCard`` (a section with the title, the target
  and the fields as facts);
* ``gchat`` / ``googlechat``: a Google Chat card (a header, the message, each field).

**Secrets.** The address is the credential. It is read here, used for the one post, and
never logged, returned, or put in an error (a failed post says the provider, the type and
the HTTP status, or the error's class): nothing of it reaches the workflow's history.

**Once per event.** The workflow gives every request a key that is the same on every retry;
a key already sent by this worker process is not sent again (bounded memory, the newest
:data:`REMEMBERED` keys). A 5xx, 429 or connection error is raised to be retried by Temporal
(4 attempts, bounded); a 4xx or a missing provider will not get better and is returned, as
data, without retries. A rollout never waits for an alert.
"""

from __future__ import annotations

import base64
import html
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import kube
from activities.canary.objects import CANARY
from models.alerts import (
    ALERT_PROVIDER_PLURAL,
    DEFAULT_CHANNEL,
    DEFAULT_USERNAME,
    SECRET_ADDRESS_KEY,
    SECRET_PROXY_KEY,
    AlertField,
    AlertProviderSpec,
    AlertProviderType,
    AlertSent,
    AlertSeverity,
    SendAlert,
    load_alert_provider,
)
from models.canary_watch import CANARY_GROUP, CANARY_VERSION
from models.flagger import FLAGGER_API_VERSION, ResourceError

#: Where an AlertProvider is looked for, in order: ours, then Flagger's.
GROUP_VERSIONS = ((CANARY_GROUP, CANARY_VERSION), tuple(FLAGGER_API_VERSION.split("/")))
#: Seconds one post may take.
POST_TIMEOUT_S = 10.0
#: Keys this process remembers having sent (a retry of one of them posts nothing).
REMEMBERED = 10_000
#: HTTP statuses worth another attempt.
RETRIED = frozenset({429, 500, 502, 503, 504})

_sent: OrderedDict[tuple[str, str], None] = OrderedDict()


# ---------------------------------------------------------------- the formats (pure)


def _slack_like(
    spec: AlertProviderSpec,
    workload: str,
    message: str,
    fields: list[AlertField],
    color: str,
) -> dict[str, Any]:
    """Flagger's Slack payload (also Discord's and Rocket.Chat's)."""
    return {
        "channel": spec.channel or DEFAULT_CHANNEL,
        "username": spec.username or DEFAULT_USERNAME,
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": workload,
                "text": message,
                "mrkdwn_in": ["text"],
                "fields": [{"title": f.name, "value": f.value, "short": False} for f in fields],
            }
        ],
    }


def _teams(workload: str, message: str, fields: list[AlertField], error: bool) -> dict[str, Any]:
    """An Office 365 connector card, as Flagger posts to Microsoft Teams."""
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if error else "0076D7",
        "summary": workload,
        "sections": [
            {
                "activityTitle": message,
                "activitySubtitle": workload,
                "facts": [{"name": f.name, "value": f.value} for f in fields],
            }
        ],
    }


def _gchat(workload: str, message: str, fields: list[AlertField]) -> dict[str, Any]:
    """A Google Chat card: a header, the message, then one section per field."""

    def paragraph(text: str) -> dict[str, Any]:
        return {"widgets": [{"textParagraph": {"text": text}}]}

    sections = [paragraph(f"<font color=#848484><b>{html.escape(message)}</b></font>")]
    sections += [
        paragraph(
            f"{html.escape(f.name)}<br><font color=#848484><b>{html.escape(f.value)}</b></font>"
        )
        for f in fields
    ]
    return {
        "cards": [{"header": {"title": "Autopilot", "subtitle": workload}, "sections": sections}]
    }


def payload(spec: AlertProviderSpec, request: SendAlert) -> dict[str, Any]:
    """The body a provider of ``spec.type`` expects for this alert."""
    workload = f"{request.target.name}.{request.target.namespace}"
    error = request.severity == AlertSeverity.ERROR
    fields, message = request.fields, request.message
    match spec.type:
        case AlertProviderType.SLACK | AlertProviderType.DISCORD:
            color = "danger" if error else "warning" if request.severity == "warn" else "good"
            return _slack_like(spec, workload, message, fields, color)
        case AlertProviderType.ROCKET:
            return _slack_like(spec, workload, message, fields, "#FF0000" if error else "#0076D7")
        case AlertProviderType.MSTEAMS:
            return _teams(workload, message, fields, error)
        case AlertProviderType.GCHAT | AlertProviderType.GOOGLECHAT:
            return _gchat(workload, message, fields)


def endpoint(spec: AlertProviderSpec, address: str) -> str:
    """Where to post: the address, or Discord's Slack-compatible endpoint under it."""
    if spec.type != AlertProviderType.DISCORD or address.rstrip("/").endswith("/slack"):
        return address
    parts = urlsplit(address)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/slack"))


# ---------------------------------------------------------------- reading (I/O)


class _Unsendable(Exception):
    """The alert cannot be sent, and no retry will change it (no provider, no address)."""


async def _provider(namespace: str, name: str) -> AlertProviderSpec:
    for group, version in GROUP_VERSIONS:
        try:
            obj = await CANARY.read_or_none(
                kube.custom().get_namespaced_custom_object,
                group,
                version,
                namespace,
                ALERT_PROVIDER_PLURAL,
                name,
            )
        except Exception as error:
            if getattr(error, "status", None) in (401, 403):
                continue  # may not read this group (Flagger's, say): try the next
            raise
        if obj is not None:
            try:
                return load_alert_provider(obj)
            except ResourceError as error:
                raise _Unsendable(f"is invalid: {'; '.join(error.problems)}") from None
    raise _Unsendable("not found")


async def _destination(spec: AlertProviderSpec, namespace: str) -> tuple[str, str | None]:
    """The address and proxy: the provider's own, overridden by its Secret's."""
    address, proxy = spec.address, spec.proxy
    if spec.secret_ref is not None:
        try:
            secret = await CANARY.read_or_none(
                kube.core().read_namespaced_secret, spec.secret_ref.name, namespace
            )
        except Exception as error:
            if getattr(error, "status", None) in (401, 403):
                raise _Unsendable(
                    f"names Secret {spec.secret_ref.name}, which the worker may not read "
                    f"(grant get on it in {namespace})"
                ) from None
            raise
        if secret is None:
            raise _Unsendable(f"names Secret {spec.secret_ref.name}, which does not exist")
        data = secret.get("data") or {}
        if SECRET_ADDRESS_KEY not in data:
            raise _Unsendable(
                f"names Secret {spec.secret_ref.name}, which has no key {SECRET_ADDRESS_KEY!r}"
            )
        address = base64.b64decode(data[SECRET_ADDRESS_KEY]).decode().strip()
        if SECRET_PROXY_KEY in data:
            proxy = base64.b64decode(data[SECRET_PROXY_KEY]).decode().strip() or None
    if not address or not address.startswith(("http://", "https://")):
        raise _Unsendable("has no http(s) address")
    return address, proxy


async def post(
    spec: AlertProviderSpec, address: str, proxy: str | None, request: SendAlert
) -> int | None:
    """POST the alert; its HTTP status, or None when no answer came (never raises).

    Neither the address nor the proxy appears in what this returns or logs.
    """
    body = payload(spec, request)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                endpoint(spec, address),
                json=body,
                proxy=proxy,
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
            ) as response,
        ):
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None


def _remember(key: tuple[str, str]) -> None:
    _sent[key] = None
    while len(_sent) > REMEMBERED:
        _sent.popitem(last=False)


@activity.defn(name="canary.send_alert")
async def send_alert(request: SendAlert) -> AlertSent:
    """Post one alert to its provider, once per key; see the module docstring."""
    ref = request.alert.provider_ref
    namespace = ref.namespace or request.target.namespace
    provider = f"{namespace}/{ref.name}"
    result = AlertSent(alert=request.alert.name, provider=provider)
    key = (request.workflow_id, request.key)
    if key in _sent:
        return result.model_copy(update={"repeat": True, "message": "already sent"})
    try:
        spec = await _provider(namespace, ref.name)
        address, proxy = await _destination(spec, namespace)
    except _Unsendable as why:
        message = f"AlertProvider {provider} {why}"
        activity.logger.warning("alert %s not sent: %s", request.alert.name, message)
        return result.model_copy(update={"message": message})
    result = result.model_copy(update={"type": spec.type.value})
    status = await post(spec, address, proxy, request)
    if status is not None and 200 <= status < 300:
        _remember(key)
        return result.model_copy(update={"status": status, "sent": True})
    what = f"HTTP {status}" if status is not None else "no answer"
    message = f"{spec.type.value} alert to AlertProvider {provider}: {what}"
    if status is None or status in RETRIED:
        raise ApplicationError(message)  # retried (bounded by the workflow's policy)
    activity.logger.warning("alert %s not sent: %s", request.alert.name, message)
    return result.model_copy(update={"status": status, "message": message})
