"""How long one scrape of the data-plane simulator's ``/metrics`` takes at 1,000 services.

Why: Prometheus on the local cluster scrapes the simulator every second, with a one-second
timeout. When a scrape takes longer, the scrape fails, the watchers read no data and healthy
canaries are rolled back (issue 14 saw it at 100 rollouts). This bench builds the series that
``--services`` canaried apps produce (primary and canary, both reporters, the 5xx of the faulty
share), then times the simulator's own rendering and a whole HTTP scrape through its listener,
and, for comparison, the same series rendered by ``prometheus_client``'s generic collector
path (what the simulator used before).

Run::

    python -m bench.sim_scrape --services 1000
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from devcluster.dataplane_sim.latency import ISTIO_DURATION_BUCKETS_MS
from devcluster.dataplane_sim.metrics import REQUEST_DURATION, REQUESTS_TOTAL, IstioMetricStore
from devcluster.dataplane_sim.routing import MeshIndex
from devcluster.dataplane_sim.simulator import metrics_handler
from devcluster.dataplane_sim.traffic import ISTIO_LABELS, Batch, TrafficGenerator, TrafficSettings
from tests.test_dataplane_sim import deployment, destination_rule, service, virtual_service


def canaried_apps(services: int, faulty_every: int) -> list[Batch]:
    """One tick of traffic for ``services`` apps mid-canary (90/10), every ``faulty_every``-th
    canary failing half its requests."""
    deployments, services_, rules, routes = [], [], [], []
    for i in range(services):
        namespace, app = f"scale-{i:04d}", f"app-{i:04d}"
        primary, canary = {"app": f"{app}-primary"}, {"app": f"{app}-canary"}
        errors = {"sim.autopilot.dev/error-rate": "0.5"} if i % faulty_every == 0 else {}
        deployments += [
            deployment(f"{app}-primary", namespace, labels=primary, ready=1),
            deployment(f"{app}-canary", namespace, labels=canary, ready=1, annotations=errors),
        ]
        services_ += [
            service(f"{app}-primary", namespace, primary),
            service(f"{app}-canary", namespace, canary),
        ]
        rules.append(destination_rule(app, namespace))
        routes.append(
            virtual_service(
                app, [(f"{app}-primary", None, 90), (f"{app}-canary", None, 10)], namespace
            )
        )
    index = MeshIndex(services_, rules, deployments)
    ready = {(d["metadata"]["namespace"], d["metadata"]["name"]): 1 for d in deployments}
    generator = TrafficGenerator(TrafficSettings(tick_seconds=1.0, default_rate=10))
    return generator.tick(routes, index, [], ready, [])


class GenericCollector(Collector):
    """The same series through ``prometheus_client``'s metric families: the baseline."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS_TOTAL, "Requests.", labels=ISTIO_LABELS)
        durations = HistogramMetricFamily(REQUEST_DURATION, "Durations.", labels=ISTIO_LABELS)
        bounds = [floatToGoString(b) for b in ISTIO_DURATION_BUCKETS_MS] + ["+Inf"]
        for batch in self.batches:
            requests.add_metric(list(batch.labels), batch.requests)
            cumulative, running = [], 0
            for bound, count in zip(bounds, batch.buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            durations.add_metric(list(batch.labels), cumulative, batch.duration_sum_ms)
        yield requests
        yield durations


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    """Wall seconds of each of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def scrape(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
        return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_scrape", description=__doc__)
    parser.add_argument("--services", type=int, default=1000, help="canaried apps")
    parser.add_argument("--faulty-every", type=int, default=10, help="every n-th canary fails")
    parser.add_argument("--rounds", type=int, default=5, help="timed scrapes of each kind")
    args = parser.parse_args(argv)

    batches = canaried_apps(args.services, args.faulty_every)
    store = IstioMetricStore()
    store.add(batches)
    body = store.render()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{args.services} services: {len(batches)} series, {samples:,} samples, "
        f"{len(body) / 1e6:.1f} MB per scrape"
    )

    server = ThreadingHTTPServer(("127.0.0.1", 0), metrics_handler(store))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GenericCollector(batches))
    try:
        rows = [
            ("simulator render", timed(store.render, args.rounds)),
            ("simulator HTTP scrape", timed(lambda: scrape(url), args.rounds)),
            ("prometheus_client render", timed(lambda: generate_latest(registry), args.rounds)),
        ]
    finally:
        server.shutdown()
        server.server_close()
    for name, times in rows:
        median, slowest = statistics.median(times) * 1e3, max(times) * 1e3
        print(f"{name:<26} median {median:8.1f} ms, max {slowest:8.1f} ms")
    ratio = statistics.median(rows[2][1]) / statistics.median(rows[0][1])
    print(f"the simulator renders {ratio:.0f}x faster than the generic path")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
