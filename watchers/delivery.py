"""Hands watcher events to operator workflows: a signal, or a signal-with-start.

Why a layer of its own: every watcher (Kubernetes, Prometheus, webhooks) ends the same
way, with one :class:`~models.operator.EventEnvelope` for one operator instance. This
module owns that last step so they all share its guarantees:

* **Addressing by name.** A workflow is addressed by its operator name (the workflow
  type) and :func:`~models.operator.workflow_id`; watchers never import a workflow class.
* **At-least-once.** Transient RPC errors are retried with bounded exponential backoff
  inside a deadline. A retried signal may land twice; the workflow ignores an envelope
  ID it has seen, so IDs must be derived deterministically from the source.
* **Every start says what it is.** A signal-with-start goes through
  :func:`service.starts.start_operator`: the Temporal UI shows the workflow's operator,
  target and revision, and which watcher (source and client identity) started it.
* **A missing workflow is an answer, not an error.** Signalling a target that has no
  running workflow yields :attr:`Outcome.NO_SUCH_WORKFLOW`, counted apart from failures,
  so a stray event does not turn into an exception storm.
* **Per-workflow order.** :meth:`Delivery.deliver_many` keeps the order of events bound
  for the same workflow and runs different workflows in parallel.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.service import RPCError, RPCStatusCode

from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, Target, workflow_id
from service.starts import start_operator

__all__ = [
    "Delivery",
    "DeliveryMetrics",
    "DeliveryRequest",
    "DeliveryResult",
    "Outcome",
    "RetryPolicy",
]

logger = logging.getLogger(__name__)

#: gRPC codes worth another try: the server is away, busy or slow, not refusing.
_TRANSIENT_CODES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.CANCELLED,
    }
)


class Outcome(enum.StrEnum):
    """What became of one event."""

    #: Temporal accepted the signal (or the signal-with-start).
    DELIVERED = "delivered"
    #: Signal only, and no workflow runs for the target: nothing was changed.
    NO_SUCH_WORKFLOW = "no_such_workflow"
    #: Not delivered: Temporal refused it, stayed unreachable past the deadline, or an
    #: earlier event for the same workflow failed (so order would break).
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryRequest:
    """One event for one operator instance.

    Attributes:
        operator: the operator name, which is also the workflow type name.
        target: the object the operator instance is responsible for.
        envelope: the event, with a deterministic ``id``.
        start_spec: when given, start the workflow with this spec if it is not running
            (signal-with-start); when ``None``, only signal a running workflow.
        stable: the revision the target runs now, when the watcher knows it (the static
            summary of a started workflow shows it).
    """

    operator: str
    target: Target
    envelope: EventEnvelope
    start_spec: dict[str, Any] | None = None
    stable: str | None = None

    @property
    def workflow_id(self) -> str:
        """The ID of the workflow this event is for."""
        return workflow_id(self.operator, self.target.namespace, self.target.name)

    @property
    def mode(self) -> str:
        """``signal_with_start`` or ``signal``, as used in metric labels."""
        return "signal" if self.start_spec is None else "signal_with_start"


@dataclass(frozen=True)
class DeliveryResult:
    """What :class:`Delivery` did with one :class:`DeliveryRequest`."""

    request: DeliveryRequest
    outcome: Outcome
    attempts: int
    detail: str = ""

    @property
    def workflow_id(self) -> str:
        """The ID of the workflow the event was for."""
        return self.request.workflow_id

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, as the webhook server returns it."""
        summary: dict[str, Any] = {
            "event_id": self.request.envelope.id,
            "type": self.request.envelope.type,
            "workflow_id": self.workflow_id,
            "mode": self.request.mode,
            "outcome": self.outcome.value,
        }
        if self.detail:
            summary["detail"] = self.detail
        return summary


@dataclass(frozen=True)
class RetryPolicy:
    """How hard :class:`Delivery` tries before it reports :attr:`Outcome.FAILED`.

    Attributes:
        attempts: tries per event, the first one included.
        initial_backoff_s: pause after the first transient failure.
        max_backoff_s: the longest pause between tries.
        multiplier: growth of the pause after each failure.
        rpc_timeout_s: the gRPC deadline of one try.
        deadline_s: the whole budget of one event, pauses included.
    """

    attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 3.0
    multiplier: float = 2.0
    rpc_timeout_s: float = 5.0
    deadline_s: float = 15.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.initial_backoff_s, self.max_backoff_s) < 0 or self.multiplier < 1:
            raise ValueError("backoff must be non-negative and must not shrink")
        if min(self.rpc_timeout_s, self.deadline_s) <= 0:
            raise ValueError("timeouts must be positive")

    def backoff_s(self, failures: int) -> float:
        """The pause after ``failures`` failed tries, with +-20 % jitter against lockstep."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (failures - 1))
        return base * random.uniform(0.8, 1.2)


class DeliveryMetrics:
    """Prometheus counters of delivery, one set per registry.

    All series carry ``source`` (``EventEnvelope.source``, e.g. ``webhook/github``) and
    ``operator``. Use :meth:`for_registry` rather than the constructor so two deliveries
    that share a registry share the series instead of failing to register twice.
    """

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, DeliveryMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.delivered = Counter(
            "autopilot_events_delivered",
            "Events Temporal accepted, by source, operator and mode.",
            ["source", "operator", "mode"],
            registry=registry,
        )
        self.failed = Counter(
            "autopilot_events_failed",
            "Events given up on, by source, operator and reason.",
            ["source", "operator", "reason"],
            registry=registry,
        )
        self.unknown_target = Counter(
            "autopilot_events_unknown_target",
            "Signal-only events whose target has no running workflow.",
            ["source", "operator"],
            registry=registry,
        )
        self.retries = Counter(
            "autopilot_event_delivery_retries",
            "Delivery tries repeated after a transient error.",
            ["source", "operator"],
            registry=registry,
        )
        self.duration = Histogram(
            "autopilot_event_delivery_seconds",
            "Time from first try to outcome, retries included.",
            ["source"],
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> DeliveryMetrics:
        """The metrics registered in ``registry`` (the global one by default)."""
        registry = REGISTRY if registry is None else registry
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics


@dataclass(frozen=True)
class _Verdict:
    """How one event ended, before it becomes a :class:`DeliveryResult`."""

    outcome: Outcome
    reason: str = ""
    detail: str = ""


class Delivery:
    """Signals operator workflows over one Temporal client.

    Args:
        client: a client connected with ``pydantic_data_converter`` (see :func:`connect`).
        task_queue: where started workflows are scheduled; the workers' task queue.
        retry: how transient errors are retried.
        metrics: counters to update; the global registry's by default.

    Raises:
        ValueError: if the client does not use the pydantic payload converter, since
            :class:`~models.operator.EventEnvelope` would then not survive the trip.
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        retry: RetryPolicy | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        converter_class = client.data_converter.payload_converter_class
        if not issubclass(converter_class, PydanticPayloadConverter):
            raise ValueError(
                "the Temporal client must be connected with "
                "temporalio.contrib.pydantic.pydantic_data_converter; "
                "use service.temporal.connect()"
            )
        if not task_queue:
            raise ValueError("task_queue must name the workers' task queue")
        self.client = client
        self.task_queue = task_queue
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or DeliveryMetrics.for_registry()

    async def deliver(
        self,
        operator: str,
        target: Target,
        envelope: EventEnvelope,
        start_spec: dict[str, Any] | None = None,
        stable: str | None = None,
    ) -> DeliveryResult:
        """Deliver one event; never raises for Temporal's answers, only reports them.

        Args:
            operator: the operator name, used as the workflow type.
            target: the object the operator instance is responsible for.
            envelope: the event; its ``id`` must be deterministic for the source.
            start_spec: when given, signal-with-start with this spec; else signal only.
            stable: the revision the target runs now, if known (for the static summary).

        Returns:
            The outcome, with the number of tries and a human-readable detail.
        """
        return await self.deliver_request(
            DeliveryRequest(operator, target, envelope, start_spec, stable)
        )

    async def deliver_many(self, requests: Sequence[DeliveryRequest]) -> list[DeliveryResult]:
        """Deliver several events: in order per workflow, in parallel across workflows.

        When an event fails, later events for the same workflow are not sent (they are
        reported as failed), so a workflow never sees ``AlertResolved`` before the
        ``SecurityAlert`` it resolves. Results come back in the order of ``requests``.
        """
        lanes: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            lanes.setdefault(request.workflow_id, []).append(index)
        results: list[DeliveryResult | None] = [None] * len(requests)

        async def run_lane(indexes: list[int]) -> None:
            blocked = False
            for index in indexes:
                request = requests[index]
                if blocked:
                    detail = "not sent: an earlier event for this workflow was not delivered"
                    self._count_failure(request, "ordering")
                    results[index] = DeliveryResult(request, Outcome.FAILED, 0, detail)
                    continue
                result = await self.deliver_request(request)
                results[index] = result
                blocked = result.outcome is Outcome.FAILED

        await asyncio.gather(*(run_lane(indexes) for indexes in lanes.values()))
        return [result for result in results if result is not None]

    async def deliver_request(self, request: DeliveryRequest) -> DeliveryResult:
        """Deliver one :class:`DeliveryRequest`, retrying transient errors."""
        started = time.monotonic()
        attempts = 0
        last_error = "timed out"
        verdict: _Verdict
        try:
            async with asyncio.timeout(self.retry.deadline_s):
                while True:
                    attempts += 1
                    try:
                        await self._send(request)
                    except Exception as error:
                        final = _classify(error, request)
                        if final is not None:
                            verdict = final
                            break
                        last_error = _describe(error)
                    else:
                        verdict = _Verdict(Outcome.DELIVERED)
                        break
                    if attempts >= self.retry.attempts:
                        detail = f"Temporal unavailable after {attempts} tries: {last_error}"
                        verdict = _Verdict(Outcome.FAILED, "unavailable", detail)
                        break
                    self.metrics.retries.labels(request.envelope.source, request.operator).inc()
                    logger.info(
                        "retrying event %s for %s after: %s",
                        request.envelope.id,
                        request.workflow_id,
                        last_error,
                    )
                    await asyncio.sleep(self.retry.backoff_s(attempts))
        except TimeoutError:
            detail = (
                f"no answer from Temporal within {self.retry.deadline_s:g}s "
                f"({attempts} tries): {last_error}"
            )
            verdict = _Verdict(Outcome.FAILED, "deadline", detail)
        return self._finish(request, verdict, attempts, started)

    async def _send(self, request: DeliveryRequest) -> None:
        rpc_timeout = timedelta(seconds=self.retry.rpc_timeout_s)
        if request.start_spec is None:
            handle = self.client.get_workflow_handle(request.workflow_id)
            await handle.signal(EVENT_SIGNAL, request.envelope, rpc_timeout=rpc_timeout)
            return
        await start_operator(
            self.client,
            request.operator,
            OperatorInput(target=request.target, spec=request.start_spec),
            task_queue=self.task_queue,
            started_by=f"{request.envelope.source} (Temporal client `{self.client.identity}`)",
            signal=(EVENT_SIGNAL, request.envelope),
            stable=request.stable,
            rpc_timeout=rpc_timeout,
        )

    def _finish(
        self, request: DeliveryRequest, verdict: _Verdict, attempts: int, started: float
    ) -> DeliveryResult:
        source, operator = request.envelope.source, request.operator
        self.metrics.duration.labels(source).observe(time.monotonic() - started)
        if verdict.outcome is Outcome.DELIVERED:
            self.metrics.delivered.labels(source, operator, request.mode).inc()
        elif verdict.outcome is Outcome.NO_SUCH_WORKFLOW:
            self.metrics.unknown_target.labels(source, operator).inc()
            logger.info("no workflow %s for event %s", request.workflow_id, request.envelope.id)
        else:
            self._count_failure(request, verdict.reason)
            logger.warning(
                "event %s for %s not delivered: %s",
                request.envelope.id,
                request.workflow_id,
                verdict.detail,
            )
        return DeliveryResult(request, verdict.outcome, attempts, verdict.detail)

    def _count_failure(self, request: DeliveryRequest, reason: str) -> None:
        self.metrics.failed.labels(request.envelope.source, request.operator, reason).inc()


def _classify(error: Exception, request: DeliveryRequest) -> _Verdict | None:
    """Sort an error into "try again" (``None``) or a final :class:`_Verdict`."""
    if isinstance(error, RPCError):
        message = error.message or str(error)
        if error.status == RPCStatusCode.NOT_FOUND:
            # The namespace missing is a configuration error, not a missing workflow.
            if request.start_spec is None and "namespace" not in message.lower():
                return _Verdict(
                    Outcome.NO_SUCH_WORKFLOW,
                    "no_such_workflow",
                    f"no running workflow {request.workflow_id}: {message}",
                )
            return _Verdict(Outcome.FAILED, "refused", f"Temporal refused: {message}")
        if error.status in _TRANSIENT_CODES:
            return None
        return _Verdict(
            Outcome.FAILED, "refused", f"Temporal refused ({error.status.name}): {message}"
        )
    if isinstance(error, RuntimeError) and "connect" in str(error).lower():
        # A lazy client raises RuntimeError("Failed client connect: ...") while Temporal is away.
        return None
    if isinstance(error, TimeoutError):
        return None
    return _Verdict(Outcome.FAILED, "refused", f"cannot deliver: {_describe(error)}")


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
