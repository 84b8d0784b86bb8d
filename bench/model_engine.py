"""The engine's model test, run long: many more interleavings than CI tries, random ones.

What runs: the hypothesis state machine of ``tests/model/machine.py`` (canary, quarantine
and the drill operator on a Temporal dev server started for the run, every worker held
open until the machine answers it), with random examples instead of CI's fixed ones.
What is printed: how many examples and steps were tried, in how long, what the world did
(events, worker answers and failures, timer waits, commands given and accepted,
continue-as-new, histories replayed), and every failure found with the shortest sequence
of steps hypothesis could shrink it to.

Run::

    python -m bench.model_engine --examples 300 --steps 40
    python -m bench.model_engine --examples 60 --steps 30 --derandomize  # CI's examples
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from collections.abc import Sequence

from hypothesis import Phase, settings

from tests.model.machine import model_settings, run_model
from tests.model.script import Script
from tests.model.world import World, model_worker
from tests.temporal_env import start_dev_server


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.model_engine", description=__doc__)
    parser.add_argument("--examples", type=int, default=200, help="examples to try (200)")
    parser.add_argument("--steps", type=int, default=40, help="most steps per example (40)")
    parser.add_argument(
        "--derandomize", action="store_true", help="CI's fixed examples instead of random ones"
    )
    parser.add_argument(
        "--no-shrink", action="store_true", help="report a failure as found, without shrinking"
    )
    return parser.parse_args(argv)


async def bench(args: argparse.Namespace) -> int:
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    env = await start_dev_server()
    try:
        script = Script()
        async with model_worker(env.client, script) as worker:
            world = World(asyncio.get_running_loop(), env.client, worker.task_queue, script)
            chosen = model_settings(args.examples, args.steps, derandomize=args.derandomize)
            if args.no_shrink:
                chosen = settings(chosen, phases=[Phase.explicit, Phase.generate])
            failure: BaseException | None = None
            try:
                await run_model(world, chosen)
            except Exception as error:
                failure = error
            print(f"interleavings tried: {world.stats.line()}")
            print(f"states reached (runs that entered each):\n{world.stats.coverage()}")
            if failure is None:
                print("failures found: 0")
                return 0
            print("failures found: 1 (hypothesis stops at the first and shrinks it)")
            print("".join(traceback.format_exception_only(failure)))
            return 1
    finally:
        await env.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
