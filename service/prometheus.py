"""The one Prometheus client factory: the canary's checks and the Prometheus watcher.

One ``PrometheusConnect`` (one connection pool) per URL and timeout, retrying under the one
HTTP retry policy (:data:`service.http_retry.PROMETHEUS`: one quick, backed-off retry of a
refused connection, a 429 or a 5xx, counted), then the caller's "no data": a slow "no data"
would delay a rollback, and the next interval asks again anyway.
"""

from __future__ import annotations

import functools
import math

from prometheus_api_client.prometheus_connect import PrometheusConnect

from service.http_retry import prometheus_retry


@functools.lru_cache(maxsize=32)
def prometheus_for(url: str, timeout_s: float) -> PrometheusConnect:
    """The client of the Prometheus at ``url``; a query may take ``timeout_s`` (at least 1 s)."""
    return PrometheusConnect(
        url=url, disable_ssl=True, retry=prometheus_retry(), timeout=max(1, math.ceil(timeout_s))
    )
