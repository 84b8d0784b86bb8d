"""Validate what the fake GitHub says against GitHub's official OpenAPI descriptions.

The REST description is OpenAPI 3.0 (``nullable: true``); it is rewritten once into JSON
Schema 2020-12 (``type: [T, "null"]``, or ``anyOf`` with null around a ``$ref``) so that one
maintained validator, ``jsonschema``, checks both it and the webhooks description (3.1,
already JSON Schema). Each response is checked against the schema the description gives
for its operation and status; an undocumented status is itself a failure.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from devcluster.github_fake import openapi
from devcluster.github_fake.server import Exchange, WebhookDelivery

REST_URI = "urn:github:rest"
WEBHOOKS_URI = "urn:github:webhooks"


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema, everywhere in ``node``."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if "oneOf" in converted:
        # GitHub's oneOf are unions, not exclusive choices: its own 409 body is both a
        # basic-error and a repository-rule-violation-error. Read them as anyOf.
        converted["anyOf"] = converted.pop("oneOf")
    if converted.pop("nullable", False) is True:
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _registry() -> Registry:
    openapi.install()
    rest = _nullable_to_json_schema(json.loads(openapi.rest_description().read_text()))
    hooks = json.loads(openapi.webhooks_description().read_text())
    return Registry().with_resources(
        [
            (REST_URI, DRAFT202012.create_resource(rest)),
            (WEBHOOKS_URI, DRAFT202012.create_resource(hooks)),
        ]
    )


def _document(uri: str) -> Any:
    return _registry().contents(uri)


def _pointer_escape(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def _validate(uri: str, pointer: str, instance: Any) -> list[str]:
    validator = Draft202012Validator({"$ref": f"{uri}#{pointer}"}, registry=_registry())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message[:300]}"
        for error in validator.iter_errors(instance)
    ]


def _response_pointer(operation: str, method: str, status: int) -> str | None:
    """The JSON pointer of the response body schema, or None when it has no body."""
    document = _document(REST_URI)
    responses = document["paths"][operation][method.lower()]["responses"]
    response = responses.get(str(status))
    base = f"/paths/{_pointer_escape(operation)}/{method.lower()}/responses/{status}"
    if response is None and status == 401:
        # GitHub answers a bad token on every operation but documents it on none.
        return "/components/schemas/basic-error"
    if response is None:
        raise AssertionError(f"{method} {operation} answered {status}, which it never documents")
    if "$ref" in response:
        base = response["$ref"].removeprefix("#")
        response = document
        for part in base.strip("/").split("/"):
            response = response[part]
    if "application/json" not in response.get("content", {}):
        return None
    return f"{base}/content/application~1json/schema"


def response_errors(exchange: Exchange) -> list[str]:
    """Why this response does not match GitHub's description (empty: it does)."""
    if exchange.operation is None:
        return []  # git smart HTTP, not the REST API
    pointer = _response_pointer(exchange.operation, exchange.method, exchange.status)
    if pointer is None:
        return [] if exchange.body is None else ["a body where GitHub documents none"]
    return _validate(REST_URI, pointer, exchange.body)


def webhook_errors(delivery: WebhookDelivery) -> list[str]:
    """Why this webhook payload does not match GitHub's webhooks description."""
    action = delivery.payload.get("action")
    name = delivery.event.replace("_", "-") + (f"-{action}" if action else "")
    document = _document(WEBHOOKS_URI)
    if name not in document["webhooks"]:
        return [f"GitHub sends no webhook {name!r}"]
    schema = document["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]
    return _validate(WEBHOOKS_URI, schema["schema"]["$ref"].removeprefix("#"), delivery.payload)


def assert_all_valid(exchanges: list[Exchange], deliveries: list[WebhookDelivery]) -> None:
    """Fail naming every response and payload that GitHub's descriptions refuse."""
    problems: list[str] = []
    for exchange in exchanges:
        for error in response_errors(exchange):
            problems.append(f"{exchange.method} {exchange.path} {exchange.status}: {error}")
    for delivery in deliveries:
        for error in webhook_errors(delivery):
            problems.append(f"webhook {delivery.event}: {error}")
    assert not problems, "\n".join(problems[:40])
