"""How long ``autopilot`` takes to answer, beside ``kubectl`` and ``temporal`` in the same run.

What is measured: the wall time of whole processes, as a user at a terminal waits for them
(start-up, imports, the round trips to Temporal, printing, exit), for ``autopilot --help``,
``autopilot status`` of a running workflow (its worker answers the status query) and of a
finished one, ``autopilot list``, and ``autopilot approve`` of a workflow whose state refuses
it (the update goes to the worker, whose validator answers; exit 1, and nothing is written,
so every run does the same work); next to them the tools people compare a CLI with, on the
same cluster: ``kubectl get`` against the cluster's kube-apiserver, ``kubectl version
--client`` (a Go binary's start alone) and ``temporal workflow list``. Every command runs
``--runs`` times, interleaved, one process at a time, output to ``/dev/null``. Medians and
minima; the machine's noise shows in the gap between them and in the load average printed
with the table. CPU time (user and system) is printed too: the work each process did, which
a busy machine disturbs far less than the wall time.

How: the local cluster the environment names (``eval "$(autopilot dev env)"``), else one of
its own (``bench/cluster.py``); a worker of the engine's test operator in this process, one
ticket workflow left open and one run to its end.

Run::

    python -m bench.cli_latency --runs 20
    python -m bench.cli_latency --runs 20 --baseline ../other-checkout/.venv/bin/autopilot
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from bench.cluster import bench_cluster
from models.operator import EngineSettings, OperatorInput, OperatorStatus, Target
from service.temporal import connect
from tests.engine.helpers import command, wait_for
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.temporal_env import executable
from worker_main import make_worker


async def _ticket(client: Client, queue: str) -> WorkflowHandle[Any, OperatorStatus]:
    """A ticket workflow, open (``Open`` refuses ``approve``)."""
    target = Target(namespace="bench", name=f"t-{uuid.uuid4().hex[:6]}")
    handle = await client.start_workflow(
        "ticket",
        OperatorInput(target=target, spec={}, engine=EngineSettings()),
        id=target.workflow_id("ticket"),
        task_queue=queue,
        result_type=OperatorStatus,
    )
    await wait_for(handle, "Open")
    return handle


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall time, CPU time (user + system, of the process and its children) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def measure(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> None:
    """Run every command ``runs`` times, interleaved (so noise hits all alike), and print.

    Wall time is what a user waits; CPU time is the work the process did, which other
    processes on the machine disturb far less (a busy machine stretches the wall time).
    """
    load_before = _load()
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, set[int]] = {name: set() for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu, code = _time(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
            codes[name].add(code)
    width = max(len(name) for name in commands)
    print(f"{runs} runs each; load average before: {load_before}")
    print(f"| {'command':{width}} | wall median | wall min | CPU median | exit codes |")
    print(f"|{'-' * (width + 2)}|------------:|---------:|-----------:|------------|")
    for name in commands:
        print(
            f"| {name:{width}} | {statistics.median(walls[name]):9.3f} s | "
            f"{min(walls[name]):6.3f} s | {statistics.median(cpus[name]):8.3f} s | "
            f"{sorted(codes[name])} |"
        )
    print(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


async def run(runs: int, autopilot: str, baseline: str | None = None) -> None:
    with bench_cluster("cli-latency-") as cluster:
        address = cluster["TEMPORAL_ADDRESS"]
        client = await connect(address)
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        async with make_worker(client, queue, [TicketWorkflow], TICKET_ACTIVITIES):
            finished = await _ticket(client, queue)
            await command(finished, "abort", by="bench")
            await finished.result()
            running = await _ticket(client, queue)
            with tempfile.TemporaryDirectory(prefix="cli-latency-") as home:
                env = {
                    **os.environ,
                    "HOME": home,
                    "XDG_STATE_HOME": str(Path(home) / "state"),
                    "KUBECONFIG": cluster["KUBECONFIG"],
                    "TEMPORAL_ADDRESS": address,
                    "COLUMNS": "120",
                }
                env.pop("AUTOPILOT_TEMPORAL_ADDRESS", None)
                kubectl = executable("kubectl")
                mine = {
                    "--help": ["--help"],
                    "status (running)": ["status", running.id],
                    "status (finished)": ["status", finished.id],
                    "list": ["list", "--all"],
                    "approve (refused)": ["approve", running.id],
                }
                commands = {f"autopilot {name}": [autopilot, *a] for name, a in mine.items()}
                if baseline is not None:
                    commands.update(
                        {f"baseline {name}": [baseline, *a] for name, a in mine.items()}
                    )
                commands |= {
                    "kubectl get namespaces": [kubectl, "get", "namespaces"],
                    "kubectl version --client": [kubectl, "version", "--client"],
                    "temporal workflow list": [
                        executable("temporal"),
                        "workflow",
                        "list",
                        "--address",
                        address,
                    ],
                }
                # The worker answers on this event loop while the commands run in a thread.
                await asyncio.to_thread(measure, commands, runs, env)
            await running.terminate("bench over")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument(
        "--autopilot",
        default=None,
        help="the autopilot executable to time (default: the one next to this Python), "
        "e.g. another checkout's, to compare",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="another autopilot executable (another checkout's) whose commands are timed in "
        "the same runs, interleaved, as 'baseline ...' rows",
    )
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    asyncio.run(run(args.runs, args.autopilot or executable("autopilot"), args.baseline))


if __name__ == "__main__":
    main()
