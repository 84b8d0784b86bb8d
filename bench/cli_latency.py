"""How long ``autopilot`` takes to answer, beside ``kubectl`` and ``temporal`` in the same run.

What is measured: the wall time of whole processes, as a user at a terminal waits for them
(start-up, imports, the round trips to Temporal, printing, exit), for ``autopilot --help``,
``autopilot status`` of a finished workflow, ``autopilot list`` and ``autopilot list -o json``;
next to them ``kubectl version --client`` and ``temporal workflow list``, the tools people
compare a CLI with, run the same number of times on the same machine.

How: a Temporal dev server of its own (the ``temporal`` next to this Python), one workflow of
the engine's test operator run to its end, then each command ``--runs`` times in turn, one
process at a time, output to ``/dev/null``. Medians and minima; the machine's noise shows in
the gap between them.

Run::

    python -m bench.cli_latency --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from models.operator import EngineSettings, OperatorInput, OperatorStatus, Target
from tests.engine.helpers import command, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.temporal_env import executable, start_dev_server
from worker_main import make_worker


async def _finished_workflow(client: Client) -> str:
    """One ticket workflow, aborted so that it has finished: ``status`` needs no worker."""
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    target = Target(namespace="bench", name=f"t-{uuid.uuid4().hex[:6]}")
    async with make_worker(client, queue, [TicketWorkflow], TICKET_ACTIVITIES):
        handle = await client.start_workflow(
            "ticket",
            OperatorInput(target=target, spec={}, engine=EngineSettings()),
            id=target.workflow_id("ticket"),
            task_queue=queue,
            result_type=OperatorStatus,
        )
        await wait_for(handle, "Open")
        await command(handle, "abort", by="bench")
        await handle.result()
    return handle.id


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, done.returncode


def measure(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> None:
    """Run every command ``runs`` times, interleaved (so noise hits all alike), and print."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, set[int]] = {name: set() for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            elapsed, code = _time(argv, env)
            times[name].append(elapsed)
            codes[name].add(code)
    width = max(len(name) for name in commands)
    print(f"{'command':{width}}  median    min      exit codes   ({runs} runs each)")
    for name, values in times.items():
        print(
            f"{name:{width}}  {statistics.median(values):.3f} s  {min(values):.3f} s  "
            f"{sorted(codes[name])}"
        )


async def run(runs: int, autopilot: str) -> None:
    env_server = await start_dev_server()
    try:
        address = env_server.client.service_client.config.target_host
        workflow = await _finished_workflow(env_server.client)
        with tempfile.TemporaryDirectory(prefix="cli-latency-") as home:
            env = {
                **os.environ,
                "HOME": home,
                "XDG_STATE_HOME": str(Path(home) / "state"),
                "KUBECONFIG": str(Path(home) / "no-kubeconfig"),
                "TEMPORAL_ADDRESS": address,
                "COLUMNS": "120",
            }
            env.pop("AUTOPILOT_TEMPORAL_ADDRESS", None)
            commands = {
                "autopilot --help": [autopilot, "--help"],
                "autopilot status": [autopilot, "status", workflow],
                "autopilot list": [autopilot, "list", "--all"],
                "autopilot list -o json": [autopilot, "list", "--all", "-o", "json"],
                "kubectl version --client": [executable("kubectl"), "version", "--client"],
                "temporal workflow list": [
                    executable("temporal"),
                    "workflow",
                    "list",
                    "--address",
                    address,
                ],
            }
            await asyncio.to_thread(measure, commands, runs, env)
    finally:
        await env_server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument(
        "--autopilot",
        default=None,
        help="the autopilot executable to time (default: the one next to this Python), "
        "e.g. another checkout's, to compare",
    )
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    asyncio.run(run(args.runs, args.autopilot or executable("autopilot")))


if __name__ == "__main__":
    main()
