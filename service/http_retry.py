"""The one retry policy of every HTTP call to the Kubernetes API server and to Prometheus.

Both clients (``kubernetes`` and ``prometheus-api-client``) send through urllib3, so the
policy is a :class:`urllib3.util.retry.Retry` that both are given (:func:`kube_retry` by
:func:`service.kube.api_client`, :func:`prometheus_retry` by :func:`prometheus_session_retry`
users). What it retries, and how:

* **429 Too Many Requests**, any verb (the server did not process the request): after the
  ``Retry-After`` it sends, when that is at most :attr:`RetryPolicy.retry_after_cap_s`; a
  longer one is not slept through in a thread: the 429 is handed back to the caller, whose
  activity raises ``KubernetesThrottled`` with that delay for Temporal to wait out.
* **500, 502, 503, 504**, idempotent verbs only (GET, HEAD, PUT, DELETE, OPTIONS): a POST or
  a PATCH may have been applied, so it is not sent twice; its activity's own retry reads the
  object again first. 409 is never retried here: a conflict needs a fresh read and a new
  decision (:mod:`activities.kube.conflicts`).
* **connection errors** (refused, reset before a reply, connect timeout), any verb; a read
  timeout or a reset mid-answer only for idempotent verbs.
* each wait is exponential with jitter (``base * 2**(n-1)``, capped, times 0.5 to 1.0), never
  zero, and at most :attr:`RetryPolicy.retries` retries per call; after the last one the
  error (or the last answer) goes to the caller.

Every retry, every give-up and every second waited is counted, by target and reason, in
``autopilot_http_retries_total``, ``autopilot_http_retries_exhausted_total`` and
``autopilot_http_retry_wait_seconds_total`` (the process's default registry, served with the
watchers' metrics).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Self

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

#: Verbs that may be sent twice: the second one does what the first did, or nothing.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
#: Answers that mean "try again later" for an idempotent verb.
SERVER_ERRORS = frozenset({500, 502, 503, 504})
THROTTLED = 429


@dataclass(frozen=True)
class RetryPolicy:
    """How one target's calls are retried.

    Attributes:
        target: the metrics label (``kube``, ``prometheus``).
        retries: retries per call, at most.
        backoff_s: the first wait; each next one doubles.
        backoff_max_s: the longest wait between two attempts (without ``Retry-After``).
        retry_after_cap_s: the longest ``Retry-After`` slept through in place.
    """

    target: str
    retries: int
    backoff_s: float
    backoff_max_s: float
    retry_after_cap_s: float

    def backoff(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1-based), with jitter, never 0."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** max(0, retry - 1))
        return ceiling * random.uniform(0.5, 1.0)


#: The API server: a few retries, as client-go does for its own 429s and 5xx.
KUBE = RetryPolicy("kube", retries=4, backoff_s=0.2, backoff_max_s=3.0, retry_after_cap_s=10.0)
#: Prometheus: one quick retry, then "no data" (the next interval asks again anyway).
PROMETHEUS = RetryPolicy(
    "prometheus", retries=1, backoff_s=0.1, backoff_max_s=0.5, retry_after_cap_s=2.0
)


class RetryMetrics:
    """The three counters, once per registry."""

    _by_registry: dict[int, RetryMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["target", "reason"]
        self.retries = Counter(
            "autopilot_http_retries",
            "HTTP calls to the API server or Prometheus sent again, by target and reason.",
            labels,
            registry=registry,
        )
        self.exhausted = Counter(
            "autopilot_http_retries_exhausted",
            "HTTP calls given up after the last retry (or a Retry-After above the cap).",
            labels,
            registry=registry,
        )
        self.wait = Counter(
            "autopilot_http_retry_wait_seconds",
            "Seconds slept between HTTP attempts (backoff and Retry-After), by target.",
            labels,
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> RetryMetrics:
        """The counters in ``registry`` (the process's default one unless given)."""
        registry = REGISTRY if registry is None else registry
        found = cls._by_registry.get(id(registry))
        if found is None:
            found = cls._by_registry[id(registry)] = cls(registry)
        return found


def _reason(error: Exception | None, response: BaseHTTPResponse | None) -> str:
    """The metrics label of one retry: the status, or the kind of connection error."""
    if response is not None and response.status:
        return str(response.status)
    if error is None:
        return "other"
    cause = getattr(error, "reason", None) or error
    return type(cause).__name__


class CountedRetry(Retry):
    """urllib3's :class:`Retry` under a :class:`RetryPolicy`, counting what it does."""

    def __init__(self, *args: Any, policy: RetryPolicy = KUBE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.metrics = RetryMetrics.for_registry()
        self._reason = "other"

    def new(self, **kw: Any) -> Self:
        """Copy the policy along (urllib3 makes a new instance for every attempt)."""
        fresh = super().new(**kw)
        fresh.policy = self.policy
        return fresh

    def _is_method_retryable(self, method: str) -> bool:
        return method.upper() in IDEMPOTENT

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """429 for any verb; 5xx for idempotent verbs only; none once the retries are spent
        (counted as exhausted: the caller gets this answer)."""
        wanted = status_code == THROTTLED or (
            status_code in SERVER_ERRORS and self._is_method_retryable(method)
        )
        if wanted and self.total is not None and self.total <= 0:
            self.metrics.exhausted.labels(self.policy.target, str(status_code)).inc()
            return False
        return wanted

    def get_backoff_time(self) -> float:
        """The policy's jittered exponential backoff (urllib3's own is 0 for the first retry)."""
        return self.policy.backoff(len(self.history))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        """Count the retry, or the give-up; refuse to sleep through a too long Retry-After."""
        reason = _reason(error, response)
        if response is not None and response.status == THROTTLED:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.policy.retry_after_cap_s:
                self.metrics.exhausted.labels(self.policy.target, "retry_after_above_cap").inc()
                raise MaxRetryError(_pool, url or "", ResponseError("Retry-After above the cap"))
        try:
            new = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            self.metrics.exhausted.labels(self.policy.target, reason).inc()
            raise
        self.metrics.retries.labels(self.policy.target, reason).inc()
        new._reason = reason
        return new

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait (Retry-After, else backoff) and count the seconds."""
        started = time.monotonic()
        if not (response is not None and self.sleep_for_retry(response)):
            time.sleep(self.get_backoff_time())
        waited = time.monotonic() - started
        self.metrics.wait.labels(self.policy.target, self._reason).inc(waited)


def counted_retry(policy: RetryPolicy) -> CountedRetry:
    """A fresh retry under ``policy``: ``policy.retries`` at most, the last answer returned.

    ``raise_on_status=False``: when the retries run out on an HTTP status, the caller gets
    that answer (the ``kubernetes`` client turns it into an ``ApiException`` with its headers,
    so a 429's ``Retry-After`` reaches the activity).
    """
    return CountedRetry(
        total=policy.retries,
        raise_on_status=False,
        respect_retry_after_header=True,
        policy=policy,
    )


def kube_retry() -> CountedRetry:
    """The API server's retry (see :data:`KUBE`)."""
    return counted_retry(KUBE)


def prometheus_retry() -> CountedRetry:
    """Prometheus's retry (see :data:`PROMETHEUS`)."""
    return counted_retry(PROMETHEUS)


def retry_after_s(headers: Any) -> float | None:
    """The seconds a ``Retry-After`` header asks for (its number form), else ``None``."""
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
