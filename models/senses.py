"""What feeds an operator: the senses it declares next to its states.

An operator says *what* it wants to hear, and the watcher runtime (``watchers/senses/``)
works out *how*: one informer per Kubernetes kind however many operators watch it, one
PromQL query per template per interval whatever the number of targets, one webhook route
per declared event type. The declarations live here, in the shared contract, because the
operator (in ``workflows/``) declares them and the watchers (which may not import
``workflows``) run them; the worker hands one to the other at start-up.

Four kinds of sense:

* :class:`WatchKind`: add, change and delete of any Kubernetes kind (group, version,
  plural), narrowed by a label selector and an annotation, mapped by a pure function to
  the events and targets of the operator;
* :class:`PromQL`: a query template run every interval for every running workflow of the
  operator, each result sent as a :class:`Reading` (or a subclass);
* :class:`Webhook`: event types accepted for the operator at ``POST /v1/events``;
* :class:`Dedicated`: one of the watchers the runtime ships for a built-in operator (the
  canary's Canary-and-Deployment join, Alertmanager, GitHub pull requests), named.

Every sense lists the event types it can send (``sends``), and the worker refuses to start
when one of them is handled by no transition of the operator
(:func:`workflows.engine.checks.sense_problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import Field

from models.events import Event
from models.limits import LABEL_KEY
from models.operator import Target

S = TypeVar("S")

KubeChangeType = Literal["added", "modified", "deleted"]

#: Longest PromQL template a sense may declare, in characters.
MAX_QUERY_CHARS = 8_192
#: Shortest and longest interval of a PromQL sense.
MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(hours=1)
#: Most events one Kubernetes change may map to.
MAX_EMITS_PER_CHANGE = 100


class Reading(Event):
    """One value of a :class:`PromQL` sense for one target (``None``: the query had no data).

    Subclass it to give the operator its own event type (``class ErrorRate(Reading)``); the
    runtime fills these three fields and nothing else.
    """

    metric: str = Field(min_length=1, max_length=128, description="the sense's name")
    value: float | None = Field(default=None, description="None: no data (error, NaN, none)")
    at: datetime = Field(description="when Prometheus evaluated the query")


@dataclass(frozen=True)
class KubeChange:
    """One change of a watched object, as a :class:`WatchKind`'s ``map`` function sees it.

    Attributes:
        type: ``added`` (also every object of a first or repeated list), ``modified`` or
            ``deleted`` (also an object gone from a repeated list).
        object: the object as the API server sent it (raw JSON).
    """

    type: KubeChangeType
    object: Mapping[str, Any]

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The object's ``metadata``."""
        metadata: Mapping[str, Any] = self.object.get("metadata") or {}
        return metadata

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` ('' for a cluster-scoped object)."""
        return str(self.metadata.get("namespace") or "")

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return str(self.metadata.get("name") or "")

    @property
    def uid(self) -> str:
        """``metadata.uid``."""
        return str(self.metadata.get("uid") or "")

    @property
    def resource_version(self) -> str:
        """``metadata.resourceVersion``."""
        return str(self.metadata.get("resourceVersion") or "")

    @property
    def labels(self) -> Mapping[str, str]:
        """``metadata.labels``."""
        labels: Mapping[str, str] = self.metadata.get("labels") or {}
        return labels

    @property
    def annotations(self) -> Mapping[str, str]:
        """``metadata.annotations``."""
        annotations: Mapping[str, str] = self.metadata.get("annotations") or {}
        return annotations


@dataclass(frozen=True)
class Emit:
    """One event for one operator instance, returned by a ``map`` function.

    Attributes:
        target: the instance (its workflow is ``<operator>/<namespace>/<name>``).
        event: the event.
        id: the event's ID, which makes delivery idempotent; '' derives one from the
            object's uid, resourceVersion and the change type, so a replayed watch or a
            repeated list sends nothing twice.
        start: a spec to start the workflow with when none runs (signal-with-start);
            ``None`` only signals a running one.
    """

    target: Target
    event: Event
    id: str = ""
    start: Mapping[str, Any] | None = None


MapFn = Callable[[KubeChange], Sequence[Emit]]


@dataclass(frozen=True)
class WatchKind:
    """Watch one Kubernetes kind and map its changes to the operator's events.

    Attributes:
        group: the API group ('' for the core group: ConfigMap, Service, ...).
        version: its version (``v1``).
        plural: the resource (``configmaps``, ``virtualservices``).
        map: a pure function from a change to the events it means (may be empty).
        sends: every event type ``map`` can return (checked against the transitions).
        labels: a label selector (``app=web,tier!=db``), applied by the API server when
            this is the only sense on the kind, else by the watcher.
        annotation: ``key`` (present) or ``key=value`` (equal) the object must carry.
    """

    group: str
    version: str
    plural: str
    map: MapFn
    sends: tuple[type[Event], ...]
    labels: str = ""
    annotation: str = ""

    def __post_init__(self) -> None:
        if not self.version or not self.plural:
            raise ValueError("WatchKind needs a version and a plural")
        if self.annotation and not LABEL_KEY.match(self.annotation.split("=", 1)[0]):
            raise ValueError(f"WatchKind annotation {self.annotation!r} is not a valid key")

    @property
    def resource(self) -> str:
        """``plural.group/version`` (``configmaps/v1`` for the core group), for messages."""
        return (
            f"{self.plural}.{self.group}/{self.version}"
            if self.group
            else (f"{self.plural}/{self.version}")
        )

    @property
    def describe(self) -> str:
        """How messages name this sense."""
        return f"watch {self.resource}"

    def wants(self, change: KubeChange) -> bool:
        """Whether the object matches the annotation (labels are matched by the watcher)."""
        if not self.annotation:
            return True
        key, _, value = self.annotation.partition("=")
        if key not in change.annotations:
            return False
        return not value or change.annotations[key] == value


@dataclass(frozen=True)
class PromQL:
    """Run a PromQL template every interval for every running instance of the operator.

    ``{{ namespace }}`` and ``{{ name }}`` may appear only as label-matcher values
    (``label=~"{{ name }}"``): the runtime fills them with a regular expression over every
    running target, sends **one** query per interval, and gives each target the series
    whose ``labels`` (namespace label, name label) name it. A target with no series gets a
    reading with ``value=None``.

    Attributes:
        metric: the name put in every :class:`Reading` (and in messages).
        query: the template.
        sends: the event type of the readings (:class:`Reading` or a subclass).
        interval: how often; the evaluation instant is the interval boundary, so a
            restarted watcher evaluates the same instants and sends the same event IDs.
        labels: the series labels that hold the target's namespace and name.
    """

    metric: str
    query: str
    sends: type[Reading]
    interval: timedelta = timedelta(seconds=30)
    labels: tuple[str, str] = ("destination_workload_namespace", "destination_workload")

    def __post_init__(self) -> None:
        if not self.metric or len(self.metric) > 128:
            raise ValueError("PromQL metric must be 1 to 128 characters")
        if not self.query or len(self.query) > MAX_QUERY_CHARS:
            raise ValueError(
                f"PromQL query of {self.metric!r} must be 1 to {MAX_QUERY_CHARS} chars"
            )
        if not MIN_INTERVAL <= self.interval <= MAX_INTERVAL:
            raise ValueError(f"PromQL interval of {self.metric!r} must be between 1s and 1h")

    @property
    def describe(self) -> str:
        """How messages name this sense."""
        return f"PromQL {self.metric!r}"


@dataclass(frozen=True)
class Webhook:
    """Event types the generic webhook endpoint accepts for the operator.

    Attributes:
        sends: the event types a caller may name in ``POST /v1/events``.
    """

    sends: tuple[type[Event], ...]

    @property
    def describe(self) -> str:
        """How messages name this sense."""
        return "webhook /v1/events"


#: The watchers the runtime ships, by the name a :class:`Dedicated` sense uses.
DEDICATED_WATCHERS = {
    "canary-resources": "Canary objects joined with their Deployments (finalizer, status)",
    "canary-metric-samples": "the canary's metric templates, sampled between analyses",
    "alertmanager": "Alertmanager alerts at POST /v1/alertmanager",
    "github": "GitHub push and pull_request webhooks at POST /v1/github",
}


@dataclass(frozen=True)
class Dedicated:
    """One of the watchers the runtime ships (:data:`DEDICATED_WATCHERS`), for this operator.

    Attributes:
        watcher: its name.
        sends: the event types it sends this operator.
    """

    watcher: str
    sends: tuple[type[Event], ...]

    def __post_init__(self) -> None:
        if self.watcher not in DEDICATED_WATCHERS:
            known = ", ".join(sorted(DEDICATED_WATCHERS))
            raise ValueError(f"no dedicated watcher {self.watcher!r}; known: {known}")

    @property
    def describe(self) -> str:
        """How messages name this sense."""
        return f"watcher {self.watcher!r}"


Sense = WatchKind | PromQL | Webhook | Dedicated


@dataclass(frozen=True)
class OperatorSenses:
    """One operator's senses, as the worker hands them to the watcher runtime."""

    operator: str
    senses: tuple[Sense, ...] = field(default_factory=tuple)

    def of_type(self, kind: type[S]) -> list[S]:
        """The senses of one kind."""
        return [sense for sense in self.senses if isinstance(sense, kind)]


def webhook_routes(table: Sequence[OperatorSenses]) -> dict[str, list[str]]:
    """``operator -> event types`` accepted at ``POST /v1/events``, from the declarations."""
    routes: dict[str, list[str]] = {}
    for entry in table:
        types = sorted(
            {model.type_name() for hook in entry.of_type(Webhook) for model in hook.sends}
        )
        if types:
            routes[entry.operator] = types
    return routes


def dedicated(table: Sequence[OperatorSenses], watcher: str, sends: str = "") -> list[str]:
    """The operators that declare the dedicated ``watcher`` (sending event type ``sends``)."""
    return [
        entry.operator
        for entry in table
        if any(
            sense.watcher == watcher
            and (not sends or any(model.type_name() == sends for model in sense.sends))
            for sense in entry.of_type(Dedicated)
        )
    ]
