"""What a worker SIGKILL costs: how soon a killed activity runs again, and the next step.

Method: ``--rollouts`` looping workflows (``bench/kill_operator.py``: each always has a
``--seconds``-long worker in flight) on a Temporal dev server started for the run. The real
worker process (``worker_main.py``) is started, killed with SIGKILL after a random 2 to 5 s,
and a new one is started at once, ``--kills`` times. Every activity attempt prints when it
began, so afterwards the bench knows, for each attempt in flight at a kill:

* **resumed**: kill → the same step's next attempt began on the new worker. Without
  heartbeats this was the whole start-to-close timeout (60 s); with them it is bounded by
  the heartbeat timeout (3 s) after the last beat, and by the new worker's start;
* **next step late**: how much later than the retried attempt's end the following step
  began (the workflow task after a kill waits out the dead worker's sticky queue). A
  retried attempt that the next kill interrupts too is counted by that kill, not here; a
  next step with another kill before it (a worker starting, a task lost in flight) is
  printed apart, since it pays two kills.

Run::

    python -m bench.worker_kills --kills 20 --rollouts 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from models.operator import OperatorInput, Target
from service.starts import WORKFLOW_TASK_TIMEOUT
from tests.temporal_env import start_dev_server

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_kills", description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each step")
    return parser.parse_args(argv)


def start_worker(address: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    env.update(AUTOPILOT_OPERATOR_MODULES="bench.kill_operator", PYTHONPATH=str(ROOT))
    argv = [sys.executable, "worker_main.py", "--address", address, "--task-queue", queue]
    argv += ["--no-watchers", "--metrics-port", "0"]
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def steps_in(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(errors="replace").splitlines()
    return [json.loads(line[5:]) for line in lines if line.startswith("STEP ")]


async def wait_polling(log: Path) -> None:
    while "worker on task queue" not in log.read_text(errors="replace"):
        await asyncio.sleep(0.05)


def quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):.2f} s, p99 {p99:.2f} s, max {ordered[-1]:.2f} s "
        f"(n={len(ordered)})"
    )


async def bench(args: argparse.Namespace) -> int:
    env = await start_dev_server()
    address = env.client.service_client.config.target_host
    queue = f"kills-{uuid.uuid4().hex[:6]}"
    directory = Path(tempfile.mkdtemp(prefix="worker-kills-"))
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kills: list[float] = []
    logs: list[Path] = []
    try:
        for index in range(args.rollouts):
            target = Target(namespace=namespace, name=f"loop-{index}")
            await env.client.start_workflow(
                "killloop",
                OperatorInput(target=target, spec={"seconds": args.seconds}),
                id=target.workflow_id("killloop"),
                task_queue=queue,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
            )
        for number in range(args.kills + 1):
            log = directory / f"worker-{number}.log"
            logs.append(log)
            worker = start_worker(address, queue, log)
            await wait_polling(log)
            if number == args.kills:  # the last one finishes what the kills interrupted
                await asyncio.sleep(20 + 2 * args.seconds)
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
                break
            await asyncio.sleep(random.uniform(2, 5))
            worker.send_signal(signal.SIGKILL)
            kills.append(time.time())
            worker.wait(30)
    finally:
        await env.shutdown()
    resumed: list[float] = []
    late: list[float] = []
    late_killed_again: list[float] = []
    per_log = [steps_in(log) for log in logs]
    everything = sorted((s for steps in per_log for s in steps), key=lambda s: s["at"])
    for number, killed_at in enumerate(kills):
        in_flight = [s for s in per_log[number] if s["at"] < killed_at < s["at"] + args.seconds]
        for attempt in in_flight:
            later = [
                s
                for s in everything
                if s["workflow"] == attempt["workflow"] and s["at"] > killed_at
            ]
            again = next((s for s in later if s["step"] == attempt["step"]), None)
            if again is None:
                continue
            resumed.append(again["at"] - killed_at)
            ends = again["at"] + args.seconds
            if any(again["at"] < k < ends for k in kills):
                continue  # the resumed attempt was killed too: its own kill counts it
            after = next((s for s in later if s["step"] != attempt["step"]), None)
            if after is None:
                continue
            if any(ends <= k < after["at"] for k in kills):
                late_killed_again.append(after["at"] - ends)
            else:
                late.append(after["at"] - ends)
    print(f"{args.kills} SIGKILLs, {args.rollouts} looping workflows, {args.seconds:g} s steps")
    print(f"killed attempt resumed after the kill: {quantiles(resumed)}")
    print(f"next step after the resumed one, late by: {quantiles(late)}")
    print(f"  the same, another kill before it began: {quantiles(late_killed_again)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip the teardown the SDK core can crash (sdk-python#300)
