"""What simulated requests carry (headers, cookies, query parameters) and how Istio matches them.

Why a module of its own: A/B testing routes by header, cookie and query parameter, session
affinity by a cookie the canary's responses set, so the synthetic client must carry them and
keep what it is sent. The request mix is a VirtualService annotation
(``sim.autopilot.dev/requests``, parsed by :func:`parse_requests`): classes of requests, each
a share of the rate, each with its own headers, cookies, query parameters and client
workload (so a test can tell from ``source_workload`` who got what), and, with ``users``,
a population of clients that keep the cookies they are given.

Everything here is pure and deterministic: the routes and annotations go in, counts and
cookie jars come out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

JsonObject = Mapping[str, Any]

#: Most classes one VirtualService's mix may declare, and most users per class.
MAX_CLASSES: Final = 20
MAX_USERS: Final = 1000
#: The response header that hands out a cookie, as routes write it.
SET_COOKIE: Final = "set-cookie"


def string_match(condition: JsonObject, value: str, ignore_case: bool = False) -> bool:
    """Evaluate an Istio ``StringMatch`` (``exact``, ``prefix`` or ``regex``) on ``value``.

    A ``regex`` must match the whole value (Envoy's RE2 rule); Python's ``re`` stands in for
    RE2, which agrees on everything a route's regex commonly uses.
    """
    subject = value.lower() if ignore_case else value
    for kind, expected in condition.items():
        pattern = str(expected).lower() if ignore_case else str(expected)
        if kind == "exact":
            return subject == pattern
        if kind == "prefix":
            return subject.startswith(pattern)
        if kind == "regex":
            try:
                return re.fullmatch(pattern, subject) is not None
            except re.error:
                return False
    return True  # an empty StringMatch matches anything


def headers_match(conditions: JsonObject, headers: Mapping[str, str]) -> bool:
    """``headers``: every named header is present and its value matches (names lowercase)."""
    for name, condition in (conditions or {}).items():
        value = headers.get(str(name).lower())
        if value is None or not string_match(condition or {}, value):
            return False
    return True


def without_headers_match(conditions: JsonObject, headers: Mapping[str, str]) -> bool:
    """``withoutHeaders``: no named header matches (an absent header never does)."""
    for name, condition in (conditions or {}).items():
        value = headers.get(str(name).lower())
        if value is not None and string_match(condition or {}, value):
            return False
    return True


def query_match(conditions: JsonObject, query: Mapping[str, str]) -> bool:
    """``queryParams``: every named parameter is present and its value matches."""
    for name, condition in (conditions or {}).items():
        value = query.get(str(name))
        if value is None or not string_match(condition or {}, value):
            return False
    return True


# =============================================================================
# The request mix
# =============================================================================


@dataclass(frozen=True)
class RequestClass:
    """One kind of simulated request and who sends it.

    Attributes:
        name: For messages and the default client name (``dataplane-sim-<name>``).
        share: Relative share of the VirtualService's rate.
        headers: Request headers (names lowercase).
        cookies: Cookies every request of the class carries.
        query: Query parameters.
        source: Client workload (``name`` or ``namespace/name``); ``None``: the route's.
        users: Clients in the class that keep the cookies responses set (0: none keep any).
    """

    name: str = "default"
    share: float = 1.0
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    users: int = 0


def _strings(entry: JsonObject, key: str, where: str) -> dict[str, str]:
    value = entry.get(key) or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
    ):
        raise ValueError(f"{where}.{key} must map names to strings")
    return {str(k): str(v) for k, v in value.items()}


def parse_requests(raw: str) -> tuple[RequestClass, ...]:
    """Parse the ``requests`` annotation: a JSON list of request classes.

    Example: ``[{"name": "insiders", "share": 1, "headers": {"x-canary": "insider"}},
    {"name": "returning", "share": 3, "users": 20}, {"share": 6}]``. Keys: ``name``,
    ``share`` (default 1), ``headers``, ``cookies``, ``query``, ``source``, ``users``.
    """
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(entries, list) or not entries or len(entries) > MAX_CLASSES:
        raise ValueError(f"expected a list of 1..{MAX_CLASSES} request classes")
    classes = []
    known = {"name", "share", "headers", "cookies", "query", "source", "users"}
    for index, entry in enumerate(entries):
        where = f"[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} is not an object")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; known: {sorted(known)}")
        share = entry.get("share", 1)
        users = entry.get("users", 0)
        if not isinstance(share, int | float) or share < 0:
            raise ValueError(f"{where}.share must be a number, 0 or more")
        if not isinstance(users, int) or not 0 <= users <= MAX_USERS:
            raise ValueError(f"{where}.users must be a whole number 0..{MAX_USERS}")
        source = entry.get("source")
        if source is not None and not isinstance(source, str):
            raise ValueError(f"{where}.source must be 'name' or 'namespace/name'")
        headers = {k.lower(): v for k, v in _strings(entry, "headers", where).items()}
        classes.append(
            RequestClass(
                name=str(entry.get("name") or f"class-{index}"),
                share=float(share),
                headers=headers,
                cookies=_strings(entry, "cookies", where),
                query=_strings(entry, "query", where),
                source=source,
                users=users,
            )
        )
    return tuple(classes)


def cookie_header(*jars: Mapping[str, str]) -> str:
    """The ``cookie`` header of a request carrying these cookies (later jars win)."""
    merged: dict[str, str] = {}
    for jar in jars:
        merged.update(jar)
    return "; ".join(f"{name}={value}" for name, value in merged.items())


def request_headers(request_class: RequestClass, kept: Mapping[str, str]) -> dict[str, str]:
    """The headers of one request: the class's, plus its cookies and the ones a user kept."""
    headers = dict(request_class.headers)
    cookies = cookie_header(request_class.cookies, kept)
    if cookies:
        headers["cookie"] = "; ".join(p for p in (headers.get("cookie"), cookies) if p)
    return headers


# =============================================================================
# Responses: the cookies a route hands out
# =============================================================================


def set_cookies(route: JsonObject, position: int) -> list[str]:
    """``Set-Cookie`` values a route adds to the responses of its destination ``position``.

    Route-level ``headers.response`` and the destination's own, ``add`` and ``set`` alike.
    """
    entries: Sequence[JsonObject] = route.get("route") or []
    places = [route.get("headers") or {}]
    if 0 <= position < len(entries):
        places.append(entries[position].get("headers") or {})
    found = []
    for headers in places:
        response = headers.get("response") or {}
        for operation in ("set", "add"):
            for name, value in (response.get(operation) or {}).items():
                if str(name).lower() == SET_COOKIE:
                    found.append(str(value))
    return found


@dataclass
class CookieJar:
    """The cookies one simulated user keeps: name → (value, expiry in simulated seconds)."""

    cookies: dict[str, tuple[str, float]] = field(default_factory=dict)

    def take(self, header: str, now: float) -> None:
        """Apply one ``Set-Cookie``: ``name=value; Max-Age=N`` (N ≤ 0 deletes it)."""
        first, *attributes = [part.strip() for part in header.split(";")]
        name, sep, value = first.partition("=")
        if not sep or not name:
            return
        expires = float("inf")
        for attribute in attributes:
            key, _, raw = attribute.partition("=")
            if key.strip().lower() == "max-age":
                try:
                    expires = now + float(raw)
                except ValueError:
                    continue
        if expires <= now:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = (value, expires)

    def current(self, now: float) -> dict[str, str]:
        """The cookies not expired at ``now`` (expired ones are dropped)."""
        for name in [n for n, (_, expires) in self.cookies.items() if expires <= now]:
            del self.cookies[name]
        return {name: value for name, (value, _) in self.cookies.items()}


@dataclass
class Population:
    """The users of one request class of one VirtualService, served in turn."""

    jars: list[CookieJar]
    cursor: int = 0

    def next_users(self, count: int) -> list[int]:
        """The users who send the next ``count`` requests (round robin)."""
        chosen = [(self.cursor + i) % len(self.jars) for i in range(count)]
        self.cursor = (self.cursor + count) % len(self.jars)
        return chosen


# =============================================================================
# Mirrors
# =============================================================================


@dataclass(frozen=True)
class Mirror:
    """Where a route copies its requests, and which percentage of them."""

    host: str
    subset: str | None
    percent: float


def mirrors_of(route: JsonObject) -> list[Mirror]:
    """A route's mirrors: ``mirror`` + ``mirrorPercentage`` (default 100 %) and ``mirrors``."""
    found = []
    single = route.get("mirror") or {}
    if single.get("host"):
        percent = (route.get("mirrorPercentage") or {}).get("value", 100.0)
        found.append(Mirror(str(single["host"]), single.get("subset"), _percent(percent)))
    for entry in route.get("mirrors") or []:
        destination = entry.get("destination") or {}
        if destination.get("host"):
            percent = (entry.get("percentage") or {}).get("value", 100.0)
            found.append(
                Mirror(str(destination["host"]), destination.get("subset"), _percent(percent))
            )
    return found


def _percent(value: Any) -> float:
    try:
        return min(max(float(value), 0.0), 100.0)
    except (TypeError, ValueError):
        return 100.0
