"""The simulated clients of a request mix: who sends which request, and what they keep.

Why apart from :mod:`~devcluster.dataplane_sim.traffic`: a VirtualService with the
``requests`` annotation sends several kinds of request (headers, cookies, query parameters,
each from its own client workload), and a class with ``users`` is a population whose members
keep the cookies their responses set: a user the weights once sent to a canary that sets an
affinity cookie sends that cookie from then on, and the cookie route keeps them there. Users
send in turn (round robin), users holding the same cookies are routed together, and the
destinations of a group's requests are handed to its users in order, so the result is
deterministic like every other split of the simulator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from devcluster.dataplane_sim import annotations as ann
from devcluster.dataplane_sim.matching import (
    CookieJar,
    Population,
    RequestClass,
    request_headers,
    set_cookies,
)
from devcluster.dataplane_sim.routing import SyntheticRequest, object_key, template_labels

if TYPE_CHECKING:
    from devcluster.dataplane_sim.traffic import Workload, _Tick


def send_mix(
    tick: _Tick,
    virtual_service: Any,
    uid: str,
    classes: Sequence[RequestClass],
    source: Workload,
    request: SyntheticRequest,
    total: int,
) -> None:
    """Send one tick's ``total`` requests of a VirtualService, split over its classes."""
    shares = tick.apportioner.split(
        ("classes", uid), total, [(i, c.share) for i, c in enumerate(classes)]
    )
    for index, request_class in enumerate(classes):
        count = shares.get(index, 0)
        client, base = _client(tick, virtual_service, request_class, source, request)
        prefix = (uid, "class", index)
        if not request_class.users:
            alike = dataclasses.replace(
                base, headers=request_headers(request_class, {}), query=request_class.query
            )
            if count:
                tick.send(prefix, virtual_service, alike, client, count)
            continue
        _send_as_users(tick, virtual_service, (uid, index), request_class, client, base, count)


def _send_as_users(
    tick: _Tick,
    virtual_service: Any,
    key: tuple[str, int],
    request_class: RequestClass,
    client: Workload,
    base: SyntheticRequest,
    count: int,
) -> None:
    """Requests of users who keep cookies: grouped by what they hold, cookies handed back."""
    population = tick.known_populations.get(key)
    if population is None or len(population.jars) != request_class.users:
        population = Population([CookieJar() for _ in range(request_class.users)])
        tick.known_populations[key] = population
    tick.populations.add(key)
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for user in population.next_users(count):
        held = tuple(sorted(population.jars[user].current(tick.now).items()))
        groups.setdefault(held, []).append(user)
    for held, users in groups.items():
        alike = dataclasses.replace(
            base, headers=request_headers(request_class, dict(held)), query=request_class.query
        )
        sent = tick.send((*key, "users", held), virtual_service, alike, client, len(users))
        if sent is None:
            continue
        route, split = sent
        waiting = list(users)
        for (position, _, _), served in split.items():
            handed = set_cookies(route, position)
            for user in waiting[:served]:
                for header in handed:
                    population.jars[user].take(header, tick.now)
            waiting = waiting[served:]


def _client(
    tick: _Tick,
    virtual_service: Any,
    request_class: RequestClass,
    source: Workload,
    request: SyntheticRequest,
) -> tuple[Workload, SyntheticRequest]:
    """The workload that sends a class's requests: its own ``source``, or the route's."""
    if request_class.source is None:
        return source, request
    try:
        ref = ann.parse_source(request_class.source)
    except ValueError as error:
        tick.problems.append(f"requests {request_class.name}: source {error}")
        return source, request
    namespace = ref.namespace or object_key(virtual_service)[0]
    client, deployment = tick.client(namespace, ref.name)
    return client, dataclasses.replace(
        request,
        source_namespace=namespace,
        source_principal=client.principal.removeprefix("spiffe://"),
        source_labels=template_labels(deployment) if deployment is not None else None,
    )
