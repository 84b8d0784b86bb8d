"""Refusals with a status code and a JSON body that names what was wrong.

Why an exception: a request can be refused at many depths (size, signature, JSON, schema,
mapping). Raising :class:`Rejection` from any of them and turning it into a response in one
middleware keeps every handler a straight line and every error body the same shape::

    {"error": "schema_violation", "message": "...", "fields": [{"field": "alerts.0.status",
     "message": "Input should be 'firing' or 'resolved'"}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

#: At most this many field problems are listed; a fuzzed body can have thousands.
MAX_LISTED_FIELDS = 20


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field of the request (body path or header name)."""

    field: str
    message: str


@dataclass(eq=False)
class Rejection(Exception):
    """A request refused with ``status``; ``code`` is a stable, machine-readable word."""

    status: int
    code: str
    message: str
    fields: Sequence[FieldProblem] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body of the refusal."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = [
                {"field": problem.field, "message": problem.message}
                for problem in self.fields[:MAX_LISTED_FIELDS]
            ]
        return body

    def response(self) -> web.Response:
        """The refusal as an aiohttp response."""
        response = web.json_response(self.body(), status=self.status, headers=dict(self.headers))
        if self.close:
            # The unread rest of an oversized body is not worth draining.
            response.force_close()
        return response


def bad_request(message: str, field_name: str, problem: str | None = None) -> Rejection:
    """A 400 about one field (a body path such as ``type`` or a header name)."""
    return Rejection(
        400, "invalid_request", message, [FieldProblem(field_name, problem or message)]
    )


def from_validation_error(error: ValidationError, *, what: str) -> Rejection:
    """Turn pydantic's complaint about a body into a 400 that names each bad field.

    Args:
        error: raised by ``model_validate_json`` on the raw body.
        what: the kind of body, for the message (``"event"``, ``"Alertmanager payload"``).
    """
    problems = error.errors(include_url=False, include_input=False)
    for problem in problems:
        if problem["type"] == "json_invalid":
            return Rejection(
                400,
                "malformed_json",
                f"the body is not valid JSON: {problem['msg']}",
                [FieldProblem("body", problem["msg"])],
            )
    fields = [
        FieldProblem(".".join(str(part) for part in problem["loc"]) or "body", problem["msg"])
        for problem in problems
    ]
    named = ", ".join(dict.fromkeys(problem.field for problem in fields[:MAX_LISTED_FIELDS]))
    return Rejection(400, "schema_violation", f"the {what} is invalid: {named}", fields)
