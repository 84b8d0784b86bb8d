"""Chaos during concurrent rollouts: every component SIGKILLed, every outcome still right.

``--rollouts`` Canary objects (a third healthy, a third faulty, a third gated and approved
mid-run) on a local cluster of its own, while ``--kills`` SIGKILLs of each component (the
worker, the watchers, the Temporal server, kube-apiserver, etcd, Prometheus) hit it in random
order, ``--spacing`` seconds apart, each restarted at once. See ``tests/chaos/harness.py``
for what is checked. Prints kills, outcomes, wrong outcomes (must be 0) and how late each
rollout's next action was after each worker kill; exits 1 on any wrong outcome or problem,
replay problems included.

The gated rollouts are approved once every planned kill has happened, so a run lasts
through all of them. Results: ``docs/reliability.md``.

Run::

    python -m bench.chaos --rollouts 20 --kills 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import COMPONENTS, MAX_WORKERS, WORKER, Chaos


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--rollouts", type=int, default=20, help="concurrent rollouts")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of each component")
    parser.add_argument(
        "--worker-kills", type=int, default=None, help="SIGKILLs of the worker (default --kills)"
    )
    parser.add_argument(
        "--only", nargs="*", choices=COMPONENTS, default=list(COMPONENTS), help="what to kill"
    )
    parser.add_argument(
        "--spacing", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX")
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=range(1, MAX_WORKERS + 1),
        metavar="N",
        help=f"worker replicas on the task queue (1 to {MAX_WORKERS}; deploy/ runs 2); a "
        "worker kill hits one of them at random",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for all to end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from devcluster.cluster import DevCluster
    from devcluster.state import Ports

    kills = {c: args.kills for c in args.only}
    if args.worker_kills is not None and WORKER in kills:
        kills[WORKER] = args.worker_kills
    state = Path(tempfile.mkdtemp(prefix="autopilot-chaos-"))
    cluster = DevCluster(state, Ports.all_free())
    print(
        f"chaos: {args.rollouts} rollouts; {args.workers} worker replica(s); kills {kills}; "
        f"spacing {args.spacing} s",
        flush=True,
    )
    cluster.up()
    try:
        chaos = Chaos(
            cluster,
            rollouts=args.rollouts,
            kills=kills,
            spacing_s=tuple(args.spacing),
            workers=args.workers,
            seed=args.seed,
            timeout_s=args.timeout,
            log_dir=state,
        )
        report = asyncio.run(chaos.run())
    finally:
        cluster.down()
    for line in report.lines():
        print(line)
    print(f"(logs of the worker and watcher processes: {os.path.basename(state)})")
    return 1 if report.wrong or report.problems or report.replay_problems else 0


if __name__ == "__main__":
    sys.exit(main())
