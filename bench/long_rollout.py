"""A rollout that runs for days stays in short runs: history events per run, printed.

The canary machine, unchanged, runs on the time-skipping Temporal server (the days pass in
minutes) with *scripted* workers in place of the real ones: every analysis passes and the
confirm-promotion gate stays closed until the given number of days has passed, so the
rollout analyses every interval for days at its top weight, then promotes. The engine
continues as new once a run's history reaches ``EngineSettings.history_event_limit``; this
prints how many runs the rollout took and the largest run's history, which must stay under
4,096 events (Temporal itself warns at 10,240 and ends a run at 51,200).

    python -m bench.long_rollout --days 7            # interval 1 m: about 10,000 analyses
    python -m bench.long_rollout --days 1 --interval 30s
"""

from __future__ import annotations

import argparse
import asyncio

from tests.canary.long_rollout import HISTORY_GOAL, long_rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="how long the gate stays shut")
    parser.add_argument("--interval", default="1m", help="the analysis interval (default 1m)")
    args = parser.parse_args()
    sizes = asyncio.run(long_rollout(args.days, args.interval))
    print(f"rollout of {args.days:g} days, interval {args.interval}: ended {sizes.state}")
    print(f"  analyses            {sizes.analyses}")
    print(f"  runs                {len(sizes.lengths)}")
    print(f"  events, all runs    {sum(sizes.lengths)}")
    print(f"  largest run         {max(sizes.lengths)} events (goal: under {HISTORY_GOAL})")
    print(f"  wall clock          {sizes.seconds:.0f} s")
    if max(sizes.lengths) >= HISTORY_GOAL:
        raise SystemExit("a run's history passed the goal")


if __name__ == "__main__":
    main()
