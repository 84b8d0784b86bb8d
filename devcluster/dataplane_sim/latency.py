"""Request-duration distributions and how they fall into Istio's histogram buckets.

Why log-normal: real service latencies are positive and right-skewed; a log-normal is the
simplest distribution with that shape that two intuitive numbers (mean and p99) pin down
exactly. The simulator never samples it: it computes what fraction of requests lands in each
bucket and hands whole requests out with carry-over (see ``allocation``), so the exported
histogram is deterministic and ``histogram_quantile`` recovers the p99 up to bucket resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Final

#: Istio's default bucket boundaries for ``istio_request_duration_milliseconds`` (ms).
ISTIO_DURATION_BUCKETS_MS: Final[tuple[float, ...]] = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)

#: Mean request duration when a Deployment sets no ``latency-ms``.
DEFAULT_LATENCY_MEAN_MS: Final = 10.0

#: Log-space standard deviation when only the mean is given: p99 is about 2.3 x mean.
DEFAULT_SIGMA: Final = 0.4

#: Mean duration of replies Envoy makes itself (403 from RBAC, 503 with no upstream, ...).
LOCAL_REPLY_MEAN_MS: Final = 0.2

#: z-score of the 99th percentile of a standard normal distribution.
_Z99: Final = NormalDist().inv_cdf(0.99)

#: Largest p99/mean ratio a log-normal can have: exp(z99^2 / 2).
MAX_P99_RATIO: Final = math.exp(_Z99 * _Z99 / 2)


@dataclass(frozen=True)
class LatencyModel:
    """A log-normal request duration, in milliseconds.

    Attributes:
        mu: Mean of the logarithm of the duration.
        sigma: Standard deviation of the logarithm of the duration (0 means constant).
    """

    mu: float
    sigma: float

    @classmethod
    def from_mean(cls, mean_ms: float, sigma: float = DEFAULT_SIGMA) -> LatencyModel:
        """Build the log-normal with this mean and log-space deviation."""
        return cls(mu=math.log(mean_ms) - sigma * sigma / 2, sigma=sigma)

    @classmethod
    def from_mean_p99(cls, mean_ms: float, p99_ms: float | None) -> tuple[LatencyModel, str]:
        """Build the log-normal with this mean and 99th percentile.

        Args:
            mean_ms: Mean duration (> 0).
            p99_ms: 99th percentile, or ``None`` for the default shape.

        Returns:
            The model and an empty string, or the nearest model and why the p99 was adjusted.
        """
        if p99_ms is None:
            return cls.from_mean(mean_ms), ""
        ratio = p99_ms / mean_ms
        if ratio < 1:
            return cls.from_mean(mean_ms, 0.0), f"p99 {p99_ms:g} < mean {mean_ms:g}; constant"
        problem = ""
        if ratio > MAX_P99_RATIO:
            ratio = MAX_P99_RATIO
            problem = f"p99 {p99_ms:g} > {MAX_P99_RATIO:.1f} x mean; capped"
        # mean = exp(mu + s^2/2), p99 = exp(mu + z s)  =>  s^2/2 - z s + ln(ratio) = 0.
        sigma = _Z99 - math.sqrt(max(_Z99 * _Z99 - 2 * math.log(ratio), 0.0))
        return cls.from_mean(mean_ms, sigma), problem

    @property
    def mean(self) -> float:
        """Mean duration in milliseconds."""
        return math.exp(self.mu + self.sigma * self.sigma / 2)

    def quantile(self, q: float) -> float:
        """Duration below which a fraction ``q`` of requests finish (0 < q < 1)."""
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))

    def cdf(self, ms: float) -> float:
        """Fraction of requests that finish within ``ms`` milliseconds."""
        if ms <= 0:
            return 0.0
        if self.sigma == 0:
            return 1.0 if math.log(ms) >= self.mu else 0.0
        return 0.5 * (1 + math.erf((math.log(ms) - self.mu) / (self.sigma * math.sqrt(2))))


#: The distribution of Envoy's own local replies.
LOCAL_REPLY: Final = LatencyModel.from_mean(LOCAL_REPLY_MEAN_MS)


@lru_cache(maxsize=1024)
def bucket_shares(
    model: LatencyModel, bounds: tuple[float, ...] = ISTIO_DURATION_BUCKETS_MS
) -> tuple[float, ...]:
    """Fraction of requests in each bucket: ``(bounds[i-1], bounds[i]]``, then above the last.

    Returns:
        ``len(bounds) + 1`` non-negative shares that add up to 1.
    """
    cumulative = [model.cdf(b) for b in bounds] + [1.0]
    previous = 0.0
    shares = []
    for value in cumulative:
        shares.append(max(value - previous, 0.0))
        previous = max(previous, value)
    return tuple(shares)
