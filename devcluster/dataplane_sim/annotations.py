"""The annotations that tell the simulated data plane how a workload or route behaves.

Why annotations: a test (or a developer at a keyboard) wants to say "this version answers half
of its requests with 500" without building an image. The simulator reads these keys from the
live objects every tick, so changing one takes effect on the next tick, exactly like a real
fault would.

Every key lives in :data:`ANNOTATIONS`, one table that the documentation mirrors. Values that
do not parse fall back to the default and produce a *problem* string; the simulator logs each
distinct problem once instead of failing the whole tick over one typo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from devcluster.dataplane_sim.latency import DEFAULT_LATENCY_MEAN_MS, LatencyModel
from devcluster.dataplane_sim.matching import RequestClass, parse_requests

T = TypeVar("T")

#: Prefix of every simulator annotation.
PREFIX: Final = "sim.autopilot.dev/"

#: Marker used in :attr:`Annotation.applies_to`.
DEPLOYMENT: Final = "Deployment"
#: Marker used in :attr:`Annotation.applies_to`.
VIRTUAL_SERVICE: Final = "VirtualService"

#: Value of ``ready-delay`` meaning "never becomes ready".
NEVER: Final = "never"


@dataclass(frozen=True)
class Annotation(Generic[T]):
    """One documented annotation: its key, where it goes, its default and its parser.

    Attributes:
        key: The full annotation key.
        applies_to: ``"Deployment"`` (metadata or pod template) or ``"VirtualService"``.
        default: Human-readable default, as the documentation shows it.
        description: One sentence on what the value does.
        parse: Turns the raw string into a value or raises ``ValueError`` with a reason.
    """

    key: str
    applies_to: str
    default: str
    description: str
    parse: Callable[[str], T]


@dataclass(frozen=True)
class SourceRef:
    """The simulated client that sends a VirtualService's requests.

    Attributes:
        name: Workload name (``source_workload``).
        namespace: Workload namespace, or ``None`` for "the VirtualService's namespace".
    """

    name: str
    namespace: str | None = None


def _number(raw: str, unit: str = "") -> float:
    text = raw.strip().lower()
    if unit and text.endswith(unit):
        text = text[: -len(unit)].strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def parse_fraction(raw: str) -> float:
    """Parse ``"0.25"`` or ``"25%"`` into a fraction in ``[0, 1]``."""
    text = raw.strip()
    value = _number(text[:-1]) / 100.0 if text.endswith("%") else _number(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{raw!r} is outside 0..1 (or 0%..100%)")
    return value


def parse_error_code(raw: str) -> int:
    """Parse an HTTP error status code between 400 and 599."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an HTTP status code") from None
    if not 400 <= value <= 599:
        raise ValueError(f"{raw!r} is not an HTTP error status code (400..599)")
    return value


def parse_milliseconds(raw: str) -> float:
    """Parse a positive duration in milliseconds (``"50"`` or ``"50ms"``)."""
    value = _number(raw, "ms")
    if value <= 0:
        raise ValueError(f"{raw!r} must be greater than 0 ms")
    return value


def parse_ready_delay(raw: str) -> float | None:
    """Parse seconds (``"2.5"`` or ``"2.5s"``) or ``"never"`` (returned as ``None``)."""
    if raw.strip().lower() == NEVER:
        return None
    value = _number(raw, "s")
    if value < 0:
        raise ValueError(f"{raw!r} must not be negative")
    return value


def parse_rate(raw: str) -> float:
    """Parse a request rate in requests per second, zero or more."""
    value = _number(raw, "rps")
    if value < 0:
        raise ValueError(f"{raw!r} must not be negative")
    return value


def parse_source(raw: str) -> SourceRef:
    """Parse ``"name"`` or ``"namespace/name"`` naming the simulated client workload."""
    parts = raw.strip().split("/")
    if len(parts) == 1 and parts[0]:
        return SourceRef(name=parts[0])
    if len(parts) == 2 and all(parts):
        return SourceRef(name=parts[1], namespace=parts[0])
    raise ValueError(f"{raw!r} is not 'name' or 'namespace/name'")


def parse_path(raw: str) -> str:
    """Parse a request path; it must start with ``/``."""
    text = raw.strip()
    if not text.startswith("/"):
        raise ValueError(f"{raw!r} does not start with '/'")
    return text


ERROR_RATE: Final = Annotation(
    key=PREFIX + "error-rate",
    applies_to=DEPLOYMENT,
    default="0",
    description="Fraction of requests the workload answers with `error-code` (0.5 or 50%).",
    parse=parse_fraction,
)
ERROR_CODE: Final = Annotation(
    key=PREFIX + "error-code",
    applies_to=DEPLOYMENT,
    default="500",
    description="HTTP status (400-599) of the failed requests that `error-rate` asks for.",
    parse=parse_error_code,
)
LATENCY_MS: Final = Annotation(
    key=PREFIX + "latency-ms",
    applies_to=DEPLOYMENT,
    default=f"{DEFAULT_LATENCY_MEAN_MS:g}",
    description="Mean request duration in milliseconds (log-normal distribution).",
    parse=parse_milliseconds,
)
LATENCY_P99_MS: Final[Annotation[float | None]] = Annotation(
    key=PREFIX + "latency-p99-ms",
    applies_to=DEPLOYMENT,
    default="about 2.3 x latency-ms",
    description="99th percentile of the request duration in milliseconds "
    "(between latency-ms and 14.9 x latency-ms).",
    parse=parse_milliseconds,
)
READY_DELAY: Final = Annotation(
    key=PREFIX + "ready-delay",
    applies_to=DEPLOYMENT,
    default="0 (at once)",
    description="On the pod template, read by kwok (not by the simulator): seconds (`2.5` or "
    "`2.5s`) from a pod's scheduling until it is Ready; `never` keeps it Pending, so the "
    "Deployment progresses until its progress deadline passes.",
    parse=parse_ready_delay,
)
RATE: Final = Annotation(
    key=PREFIX + "rate",
    applies_to=VIRTUAL_SERVICE,
    default="--rate (10)",
    description="Requests per second the simulated client sends through this VirtualService.",
    parse=parse_rate,
)
SOURCE: Final = Annotation(
    key=PREFIX + "source",
    applies_to=VIRTUAL_SERVICE,
    default="dataplane-sim-client in the VirtualService's namespace; "
    "istio-system/istio-ingressgateway if it is bound only to gateways",
    description="Client workload reported as `source_workload`: `name` or `namespace/name`.",
    parse=parse_source,
)
PATH: Final = Annotation(
    key=PREFIX + "path",
    applies_to=VIRTUAL_SERVICE,
    default="/",
    description="Path of the synthetic GET requests, used for http route `match` and "
    "AuthorizationPolicy `paths`.",
    parse=parse_path,
)
REQUESTS: Final = Annotation(
    key=PREFIX + "requests",
    applies_to=VIRTUAL_SERVICE,
    default="one class: no headers, cookies or query parameters",
    description="The request mix: a JSON list of classes, each a `share` of the rate with "
    "its own `headers`, `cookies`, `query`, client `source` and `users` who keep the "
    "cookies responses set.",
    parse=parse_requests,
)

#: Every annotation the simulator reads, keyed by annotation key.
ANNOTATIONS: Final[Mapping[str, Annotation[Any]]] = {
    a.key: a
    for a in (
        ERROR_RATE,
        ERROR_CODE,
        LATENCY_MS,
        LATENCY_P99_MS,
        READY_DELAY,
        RATE,
        SOURCE,
        PATH,
        REQUESTS,
    )
}

#: Name of the simulated client when no ``source`` annotation is set.
DEFAULT_SOURCE_WORKLOAD: Final = "dataplane-sim-client"


def read(
    sources: Sequence[Mapping[str, str]], annotation: Annotation[T], default: T, problems: list[str]
) -> T:
    """Read one annotation from the first mapping that has it.

    Args:
        sources: Annotation mappings in order of precedence.
        annotation: What to read.
        default: Value when the key is absent or does not parse.
        problems: Receives a message when a present value does not parse.

    Returns:
        The parsed value or ``default``.
    """
    for source in sources:
        raw = source.get(annotation.key)
        if raw is None:
            continue
        try:
            return annotation.parse(raw)
        except ValueError as error:
            problems.append(f"{annotation.key}: {error}; using {default!r}")
            return default
    return default


@dataclass(frozen=True)
class WorkloadBehaviour:
    """How a simulated workload answers, read from its Deployment.

    Attributes:
        error_rate: Fraction of requests answered with ``error_code``.
        error_code: HTTP status of the failed requests.
        latency: Request duration distribution.
    """

    error_rate: float
    error_code: int
    latency: LatencyModel


@dataclass(frozen=True)
class RouteBehaviour:
    """How the simulated client uses a VirtualService.

    Attributes:
        rate: Requests per second.
        source: The client workload.
        path: Path of every synthetic request.
        requests: The request mix; empty: one class without headers, cookies or query.
    """

    rate: float
    source: SourceRef
    path: str
    requests: tuple[RequestClass, ...] = ()


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    metadata = obj.get("metadata") or {}
    return metadata.get("annotations") or {}


def deployment_annotation_sources(deployment: Mapping[str, Any]) -> list[Mapping[str, str]]:
    """Return the annotation mappings of a Deployment, most specific first.

    The Deployment's own metadata wins over its pod template, so a fault can be injected into a
    running workload without starting a rollout (changing the template bumps the generation).
    """
    template = (deployment.get("spec") or {}).get("template") or {}
    return [_annotations(deployment), _annotations(template)]


def workload_behaviour(deployment: Mapping[str, Any], problems: list[str]) -> WorkloadBehaviour:
    """Read a Deployment's simulated behaviour.

    Args:
        deployment: The Deployment as a JSON mapping.
        problems: Receives a message for every annotation that does not parse.

    Returns:
        The behaviour, with defaults for absent or invalid values.
    """
    sources = deployment_annotation_sources(deployment)
    mean = read(sources, LATENCY_MS, DEFAULT_LATENCY_MEAN_MS, problems)
    p99: float | None = read(sources, LATENCY_P99_MS, None, problems)
    latency, latency_problem = LatencyModel.from_mean_p99(mean, p99)
    if latency_problem:
        problems.append(f"{LATENCY_P99_MS.key}: {latency_problem}")
    return WorkloadBehaviour(
        error_rate=read(sources, ERROR_RATE, 0.0, problems),
        error_code=read(sources, ERROR_CODE, 500, problems),
        latency=latency,
    )


def route_behaviour(
    virtual_service: Mapping[str, Any],
    default_rate: float,
    default_source: SourceRef,
    problems: list[str],
) -> RouteBehaviour:
    """Read a VirtualService's simulated client settings.

    Args:
        virtual_service: The VirtualService as a JSON mapping.
        default_rate: The simulator-wide request rate.
        default_source: The client when no ``source`` annotation says otherwise.
        problems: Receives a message for every annotation that does not parse.

    Returns:
        The settings, with defaults for absent or invalid values.
    """
    sources = [_annotations(virtual_service)]
    return RouteBehaviour(
        rate=read(sources, RATE, default_rate, problems),
        source=read(sources, SOURCE, default_source, problems),
        path=read(sources, PATH, "/", problems),
        requests=read(sources, REQUESTS, (), problems),
    )
