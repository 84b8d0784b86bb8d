"""What every endpoint produces: delivery requests, plus what it chose to ignore.

Why shared: the three endpoints parse different bodies but end the same way, with a list
of :class:`~watchers.delivery.DeliveryRequest` and a list of :class:`Ignored` items that
the response reports back, so a sender can see why an alert or a file moved nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from models.operator import Target
from watchers.delivery import DeliveryRequest
from watchers.webhooks.errors import FieldProblem, from_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Ignored:
    """One item of a valid body that maps to no event, and why."""

    item: str
    reason: str


@dataclass
class Routed:
    """The events a request maps to, in the order they must be delivered."""

    requests: list[DeliveryRequest] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


def parse_body(model: type[ModelT], body: bytes, *, what: str) -> ModelT:
    """Validate the raw ``body`` against ``model``.

    Raises:
        Rejection: 400 ``malformed_json`` or ``schema_violation`` naming the fields.
    """
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise from_validation_error(error, what=what) from None


def make_target(namespace: str, name: str) -> Target | list[FieldProblem]:
    """The :class:`Target`, or what is wrong with ``namespace`` and ``name``."""
    try:
        return Target(namespace=namespace, name=name)
    except ValidationError as error:
        return [
            FieldProblem(".".join(map(str, problem["loc"])), problem["msg"])
            for problem in error.errors(include_url=False, include_input=False)
        ]


def describe(problems: list[FieldProblem]) -> str:
    """``namespace: String should match pattern ...; name: ...``."""
    return "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
