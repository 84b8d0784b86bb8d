"""The http routes of a canary's VirtualService, for each of Flagger's strategies.

Why pure functions apart from the router: what a VirtualService must say at a given moment
of a rollout (the weights, and for A/B the match route, for blue/green the mirror, for
session affinity the cookie route and ``Set-Cookie``) is decided here from the spec alone,
and unit tested without a cluster; :class:`activities.canary.routing.IstioRouter` only reads
and writes it.

The shapes, as Flagger writes them:

* **canary**: one route, ``<apex>-primary`` and ``<apex>-canary`` weighted.
* **A/B testing** (``analysis.match``): a first route whose ``match`` is the A/B conditions
  (merged with ``service.match``) carries the two weights, ``0/100`` while the canary is
  analysed and ``100/0`` otherwise; a second route sends everything else to the primary.
* **mirror** (blue/green's iterations, or a canary's step at weight 0): the weighted route
  also has ``mirror`` (the canary host) and, with ``mirrorWeight``, ``mirrorPercentage``.
* **session affinity**, while the canary has weight: the canary destination's responses add
  ``Set-Cookie: <cookie>; Max-Age=<maxAge>``, and a route named ``sticky-route`` ahead of
  the weighted one sends requests carrying that cookie to the canary (``0/100``).
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from models.canary import CanarySpec, CanaryStep
from models.traffic import Strategy, merge_matches

#: Flagger's name of the route that keeps affinity users on the canary.
STICKY_ROUTE: Final = "sticky-route"
#: The response header that hands out the affinity cookie.
SET_COOKIE: Final = "Set-Cookie"


@dataclass(frozen=True)
class RouteOptions:
    """What one traffic change carries besides the two weights.

    Attributes:
        mirror: Mirror the requests of the weighted route to the canary.
        cookie: ``name=value``: the session-affinity cookie of this rollout (with weight).
    """

    mirror: bool = False
    cookie: str | None = None


def affinity_cookie(step: CanaryStep) -> str:
    """``<cookieName>=<value>``, the same for every retry of an activity of one attempt.

    The value is a hash of the workflow, the revision and the attempt: a new revision or a
    ``retry`` hands out a new cookie, so users of an earlier rollout match no route.
    """
    affinity = step.spec.analysis.session_affinity
    assert affinity is not None
    seed = f"{step.workflow_id}/{step.data.revision}/{step.data.attempt}"
    return f"{affinity.cookie_name}={hashlib.sha256(seed.encode()).hexdigest()[:16]}"


def route_options(step: CanaryStep, canary_weight: int) -> RouteOptions:
    """The options of a weight the rollout is about to write.

    Mirroring runs only while analysing at weight 0 (``Progressing``): a blue/green's
    iterations, a canary's mirror step. The affinity cookie lives while the canary has
    weight; at 0 (promoted, rolled back) the cookie route goes.
    """
    analysis = step.spec.analysis
    mirror = analysis.mirror and step.state == "Progressing" and canary_weight == 0
    cookie = (
        affinity_cookie(step)
        if analysis.session_affinity is not None and canary_weight > 0
        else None
    )
    return RouteOptions(mirror=mirror, cookie=cookie)


def uses_strategy_routes(spec: CanarySpec) -> bool:
    """Whether the routes are more than one weighted route (then they are written whole)."""
    analysis = spec.analysis
    return bool(
        analysis.match or analysis.mirror or analysis.session_affinity or spec.service.match
    )


def cookie_regex(cookie: str) -> str:
    """A regex (RE2, whole value) on the ``Cookie`` header holding this ``name=value`` pair."""
    name, _, value = cookie.partition("=")
    return f"^(.*?; ?)?{_escaped(name)}={_escaped(value)}(;.*)?$"


def _escaped(text: str) -> str:
    """RE2-escape the regex metacharacters a cookie token may hold (``.``, ``*``, ...)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


class IstioRoutes:
    """Builds the http routes of one canary's VirtualService."""

    def __init__(self, spec: CanarySpec, primary_host: str, canary_host: str) -> None:
        self.spec = spec
        self.primary_host = primary_host
        self.canary_host = canary_host

    def destination(self, host: str, weight: int) -> dict[str, Any]:
        """One weighted destination on the service port."""
        port = {"number": self.spec.service.port}
        return {"destination": {"host": host, "port": port}, "weight": weight}

    def base(self) -> dict[str, Any]:
        """A route with the user's route options (``service.retries``, ``timeout``, ...)."""
        service = self.spec.service
        route: dict[str, Any] = {}
        for key, value in (
            ("retries", service.retries),
            ("timeout", service.timeout),
            ("headers", service.headers),
            ("corsPolicy", service.cors_policy),
            ("rewrite", service.rewrite),
        ):
            if value:
                route[key] = copy.deepcopy(value)
        return route

    def weighted(self, primary: int, canary: int) -> dict[str, Any]:
        """The route splitting between primary and canary (``service.match`` on it)."""
        route = {
            "route": [
                self.destination(self.primary_host, primary),
                self.destination(self.canary_host, canary),
            ],
            **self.base(),
        }
        if self.spec.service.match:
            route = {"match": [m.istio() for m in self.spec.service.match], **route}
        return route

    def http(self, primary: int, canary: int, options: RouteOptions) -> list[dict[str, Any]]:
        """Every http route of the VirtualService at this split, in Istio's order."""
        analysis = self.spec.analysis
        service_match = self.spec.service.match
        if analysis.strategy == Strategy.AB_TESTING:
            matched = self.weighted(primary, canary)
            matched["match"] = merge_matches([m.istio() for m in analysis.match], service_match)
            rest: dict[str, Any] = {
                "route": [self.destination(self.primary_host, 100)],
                **self.base(),
            }
            if service_match:
                rest = {"match": [m.istio() for m in service_match], **rest}
            return [matched, rest]
        weighted = self.weighted(primary, canary)
        if options.mirror:
            weighted["mirror"] = {
                "host": self.canary_host,
                "port": {"number": self.spec.service.port},
            }
            if analysis.mirror_weight is not None:
                weighted["mirrorPercentage"] = {"value": float(analysis.mirror_weight)}
        affinity = analysis.session_affinity
        if affinity is None or options.cookie is None or canary <= 0:
            return [weighted]
        weighted["route"][1]["headers"] = {
            "response": {"add": {SET_COOKIE: f"{options.cookie}; Max-Age={affinity.max_age}"}}
        }
        cookie_match = {"headers": {"cookie": {"regex": cookie_regex(options.cookie)}}}
        sticky = {
            "name": STICKY_ROUTE,
            "match": merge_matches([cookie_match], service_match),
            "route": [
                self.destination(self.primary_host, 0),
                self.destination(self.canary_host, 100),
            ],
            **self.base(),
        }
        return [sticky, weighted]

    def weights(self, http: list[dict[str, Any]]) -> tuple[int, int] | None:
        """(primary, canary) of the first route holding both hosts but the cookie route."""
        for entry in http:
            if entry.get("name") == STICKY_ROUTE:
                continue
            found: dict[str, int] = {}
            for destination in entry.get("route") or []:
                host = (destination.get("destination") or {}).get("host")
                if host in (self.primary_host, self.canary_host):
                    found[host] = int(destination.get("weight") or 0)
            if set(found) == {self.primary_host, self.canary_host}:
                return found[self.primary_host], found[self.canary_host]
        return None
