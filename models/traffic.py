"""The canary's traffic strategies as data: Istio match conditions and session affinity.

Why a module of its own: A/B testing (``analysis.match``), ``service.match`` and session
affinity carry Istio's ``HTTPMatchRequest`` as Flagger users write it, and the router, the
CRD schema and the linter all read the same models. They are checked when the spec loads,
so a typo (``exatc``), a regex that does not compile or a header Istio would never match
(``X-Canary``: Istio compares lowercase names) is refused naming its field, instead of a
VirtualService that routes nobody to the canary.

Everything here is pure data; :meth:`HTTPMatch.istio` is the object written into a route.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from models.judge import _Part  # camelCase, unknown fields refused: every part of a spec
from models.limits import MAX_ENTRIES, MAX_LABEL, MAX_NAME, MAX_TEXT

#: A header name as Istio matches it: lowercase, hyphens (HTTP/2 names are lowercase).
HEADER_NAME = r"^:?[a-z0-9!#$%&'*+.^_`|~-]+$"
#: A cookie name (an HTTP token: no separators, no spaces).
COOKIE_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
#: Flagger's default ``sessionAffinity.maxAge``: one day.
DEFAULT_COOKIE_MAX_AGE = 86400
#: A year: no canary run lasts longer, and browsers cap Max-Age far below Go's int.
MAX_COOKIE_MAX_AGE = 365 * 86400

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
#: ``<namespace>/<name>`` or a host name, as in ``service.gateways``.
Gateway = Annotated[str, Field(min_length=1, max_length=MAX_LABEL + 1 + MAX_NAME)]


class Strategy(StrEnum):
    """Flagger's deployment strategies, as the analysis spec selects them."""

    CANARY = "canary"  #: step weights (with mirror and session affinity as options)
    AB_TESTING = "ab-testing"  #: analysis.match + iterations
    BLUE_GREEN = "blue-green"  #: iterations alone (with mirror as an option)


class StringMatch(_Part):
    """Istio's ``StringMatch``: exactly one of ``exact``, ``prefix`` or ``regex``.

    ``regex`` is RE2 and must match the whole value (Envoy's rule), so ``.*Firefox.*``
    finds Firefox in a user agent and ``Firefox`` alone matches only that exact value.
    """

    exact: Text | None = None
    prefix: Text | None = None
    regex: Text | None = None
    suffix: Text | None = Field(
        default=None,
        description="refused: Istio has no suffix match (write a regex such as '.*value')",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        if self.suffix is not None:
            raise ValueError(
                f"suffix is not an Istio match; write a regex such as '.*{re.escape(self.suffix)}'"
            )
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of exact, prefix or regex (got {given or 'none'})")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                raise ValueError(f"regex {self.regex!r} does not compile: {error}") from None
        return self

    def istio(self) -> dict[str, str]:
        """The StringMatch as Istio takes it."""
        return self.model_dump(mode="json", exclude_none=True)


class HTTPMatch(_Part):
    """One Istio ``HTTPMatchRequest``: every condition set must hold (a list of them is OR).

    Flagger's examples: ``headers: {x-canary: {exact: insider}}``, a cookie as
    ``headers: {cookie: {regex: "^(.*?;)?(canary=always)(;.*)?$"}}``,
    ``queryParams: {beta: {exact: "1"}}``, ``sourceLabels: {app: scheduler}`` (in-mesh
    callers only: it needs the ``mesh`` gateway).
    """

    name: str | None = Field(default=None, max_length=MAX_NAME)
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[Label, StringMatch] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    without_headers: dict[Label, StringMatch] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    query_params: dict[Label, StringMatch] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    port: int | None = Field(default=None, ge=1, le=65535)
    source_labels: dict[Label, Text] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    source_namespace: str | None = Field(default=None, max_length=MAX_LABEL)
    gateways: list[Gateway] = Field(default_factory=list, max_length=MAX_ENTRIES)
    ignore_uri_case: bool | None = None

    @field_validator("headers", "without_headers")
    @classmethod
    def _lowercase_names(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for key in value:
            if not re.fullmatch(HEADER_NAME, key):
                raise ValueError(
                    f"{key!r}: Istio matches header names in lowercase, without spaces "
                    f"(write {key.lower().replace(' ', '-')!r})"
                )
        return value

    @field_validator("query_params")
    @classmethod
    def _istio_query_matches(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for key, match in value.items():
            if match.prefix is not None:
                raise ValueError(
                    f"{key}: Istio matches a query parameter by exact or regex, not prefix"
                )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> HTTPMatch:
        if not self.istio():
            raise ValueError("an empty match admits every request; give it a condition")
        return self

    def istio(self) -> dict[str, Any]:
        """The match as Istio takes it (empty conditions left out)."""
        dumped = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {key: value for key, value in dumped.items() if value not in ({}, [])}


#: A list of matches, any of which admits a request (Istio's ``match``).
Matches = Annotated[list[HTTPMatch], Field(max_length=MAX_ENTRIES)]


class SessionAffinity(_Part):
    """Flagger's ``analysis.sessionAffinity``: users sent to the canary once stay there.

    While the canary has weight, its responses carry ``Set-Cookie: <cookieName>=<value>;
    Max-Age=<maxAge>`` and a route ahead of the weighted one sends requests with that cookie
    to the canary. The value is new for every rollout (and every retry), so a cookie of an
    earlier rollout routes nobody.
    """

    cookie_name: str = Field(
        min_length=1, max_length=MAX_LABEL, pattern=COOKIE_NAME, description="the cookie's name"
    )
    max_age: int = Field(
        default=DEFAULT_COOKIE_MAX_AGE,
        ge=1,
        le=MAX_COOKIE_MAX_AGE,
        description=f"the cookie's Max-Age in seconds (default {DEFAULT_COOKIE_MAX_AGE})",
    )


def merge_matches(canary: list[dict[str, Any]], service: list[HTTPMatch]) -> list[dict[str, Any]]:
    """Flagger's merge of a strategy's matches (Istio objects) with ``service.match``.

    Every (strategy, service) pair becomes one match: the service's conditions (e.g. a URI
    prefix) with the strategy's headers, query parameters and source labels put over them,
    so an A/B header applies only where the service routes at all. With no
    ``service.match`` the strategy's matches are used as they are.
    """
    if not service:
        return [dict(m) for m in canary]
    merged = []
    for ours in canary:
        for theirs in service:
            match = theirs.istio()
            for key in ("headers", "queryParams", "sourceLabels"):
                if ours.get(key):
                    match[key] = ours[key]
            merged.append(match)
    return merged
