"""Command line of the data-plane SIMULATOR: ``python -m devcluster.dataplane_sim``.

Runs until SIGTERM or SIGINT, then stops ticking, closes the metrics listener and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from kubernetes.config.config_exception import ConfigException

from devcluster.dataplane_sim.simulator import DataPlaneSimulator, SimConfig

log = logging.getLogger("devcluster.dataplane_sim")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.dataplane_sim",
        description="SIMULATED Envoy for the Autopilot dev cluster: sends requests along the "
        "live routes and serves Istio-style request metrics for Prometheus to scrape.",
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the dev cluster")
    parser.add_argument(
        "--metrics-port", type=int, required=True, help="port of /metrics on 127.0.0.1 (0: any)"
    )
    parser.add_argument(
        "--rate", type=float, default=10.0, help="requests/s per VirtualService (default 10)"
    )
    parser.add_argument(
        "--tick", type=float, default=1.0, help="seconds per tick, simulated and wall (default 1)"
    )
    parser.add_argument("--namespace", default=None, help="only this namespace (default: all)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run until a signal arrives, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sim_config = SimConfig(
        rate=args.rate,
        tick=args.tick,
        namespace=args.namespace,
        metrics_port=args.metrics_port,
    )
    try:
        simulator = DataPlaneSimulator.from_kubeconfig(args.kubeconfig, sim_config)
    except ConfigException as error:
        log.error("cannot use kubeconfig %s: %s", args.kubeconfig, error)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        port = simulator.serve_metrics()
    except OSError as error:
        log.error("cannot listen on 127.0.0.1:%d: %s", args.metrics_port, error)
        return 2
    log.info(
        "data-plane SIMULATOR running: namespace=%s rate=%g/s tick=%gs metrics=127.0.0.1:%d",
        args.namespace or "(all)",
        args.rate,
        args.tick,
        port,
    )
    try:
        simulator.run(stop)
    finally:
        simulator.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
