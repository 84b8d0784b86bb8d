"""`autopilot` ends with a documented exit code, never a signal, as a script sees it.

The Temporal SDK's core keeps threads that crashed the interpreter's teardown in a few
percent of runs (exit 134 or 139 after the right output). The CLI now leaves without that
teardown (``cli.errors.leave``). These tests run the real ``autopilot`` script as processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

import pytest

import worker_main
from cli.errors import Exit
from tests.cli.conftest import Tickets
from tests.engine.helpers import command, send, wait_for
from tests.temporal_env import executable

DOCUMENTED = {int(code) for code in Exit}

#: How many ``autopilot`` processes run at once in the long test.
AT_ONCE = 4

#: Rounds of the long test; each runs every read command once (10 commands a round). CI
#: runs 3 (30 runs, about 25 s on 2 cores); the crash it guards against hit a few
#: percent of runs, so before changing how the CLI leaves run the 200 of its first proof:
#: ``AUTOPILOT_EXIT_TEST_ROUNDS=20 pytest tests/cli/test_cli_exit.py``.
ROUNDS = int(os.environ.get("AUTOPILOT_EXIT_TEST_ROUNDS", "3"))


@dataclass(frozen=True)
class Ended:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def crashed(self) -> bool:
        """Killed by a signal (a negative code here), or Python's fatal error report."""
        return self.code < 0 or self.code >= 128 or "Fatal Python error" in self.stderr


def environment(*overrides: dict[str, str | None]) -> dict[str, str]:
    merged: dict[str, str | None] = dict(os.environ)
    for override in overrides:
        merged.update(override)
    return {name: value for name, value in merged.items() if value is not None}


async def autopilot_process(
    *argv: str, env: dict[str, str], stdout: int = asyncio.subprocess.PIPE
) -> Ended:
    process = await asyncio.create_subprocess_exec(
        executable("autopilot"), *argv, env=env, stdout=stdout, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ended(argv, process.returncode, (out or b"").decode(), err.decode())


def test_the_autopilot_script_is_the_entry_point_that_leaves_cleanly():
    (script,) = entry_points(group="console_scripts", name="autopilot")
    assert script.value == "cli.main:main", "reinstall the package: pip install -e ."


async def test_leaving_runs_the_commands_cleanup_but_not_the_interpreters_teardown(
    isolated_state,
):
    # A thread still finishing and an atexit callback are cleanup a command may leave;
    # the witness's __del__ runs only if the interpreter tears its modules down.
    script = """
import atexit, sys, threading, time
class Witness:
    def __del__(self):
        sys.stderr.write("torn down\\n")
witness = Witness()
atexit.register(lambda: print("atexit callback ran"))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
sys.argv = ["autopilot", "describe", "no-such-operator"]
from cli.main import main
main()
"""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env=environment(isolated_state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == Exit.UNKNOWN_TARGET, err.decode()
    assert out.decode().splitlines() == ["thread finished", "atexit callback ran"]
    assert "no operator 'no-such-operator'" in err.decode()
    assert "torn down" not in err.decode()


async def test_output_printed_without_a_flush_still_reaches_a_pipe(
    isolated_state, capsys, monkeypatch
):
    # argparse prints the worker's help into a buffered stdout and never flushes it.
    monkeypatch.setenv("COLUMNS", str(isolated_state["COLUMNS"]))
    with pytest.raises(SystemExit):
        worker_main.parse_args(["--help"])
    printed_in_process = capsys.readouterr().out

    ended = await autopilot_process("worker", "--", "--help", env=environment(isolated_state))
    assert ended.code == Exit.OK, ended.stderr
    assert ended.stdout == printed_in_process


@pytest.mark.parametrize(
    "argv",
    [("describe", "canary"), ("describe", "canary", "--mermaid"), ("--help",)],
    ids=" ".join,
)
async def test_a_reader_that_went_away_ends_the_command_quietly_with_exit_1(isolated_state, argv):
    # What '| head -1' does to a long output, made certain: nobody reads the pipe at all.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        ended = await autopilot_process(*argv, env=environment(isolated_state), stdout=write_end)
    finally:
        os.close(write_end)
    assert ended.code == Exit.FAILED
    assert ended.stderr == ""


@pytest.mark.temporal
async def test_the_read_commands_never_crash_at_exit_in_many_runs(
    isolated_state, temporal_env, tickets: Tickets
):
    done = await tickets.start()
    await wait_for(done, "Open")
    await command(done, "abort", by="ann")
    await done.result()
    broken = await tickets.start(required_votes=1, fail_apply=True)
    await send(broken, "Vote", "v1", voter="ann")
    await wait_for(broken, "InReview")
    await command(broken, "approve", by="carol")
    await wait_for(broken, "Broken")
    terminated = await tickets.start()
    await wait_for(terminated, "Open")
    await terminated.terminate("operator error")
    missing = f"ticket/{tickets.namespace}/no-such-ticket"

    expected: dict[tuple[str, ...], Exit] = {
        ("status", done.id): Exit.OK,
        ("status", broken.id, "-o", "json"): Exit.OK,
        ("status", missing): Exit.UNKNOWN_TARGET,
        ("list", "-n", tickets.namespace, "--all", "-o", "json"): Exit.OK,
        ("list", "-n", tickets.namespace, "--all"): Exit.OK,
        ("watch", done.id): Exit.OK,
        ("watch", broken.id): Exit.WAITING,
        ("watch", terminated.id): Exit.FAILED,
        ("describe", "canary"): Exit.OK,
        ("describe", "no-such-operator"): Exit.UNKNOWN_TARGET,
    }
    env = environment(isolated_state, temporal_env)
    slots = asyncio.Semaphore(AT_ONCE)

    async def one(argv: tuple[str, ...]) -> Ended:
        async with slots:
            return await autopilot_process(*argv, env=env)

    runs = [argv for _ in range(ROUNDS) for argv in expected]
    assert len(runs) >= 10 * ROUNDS
    ended = await asyncio.gather(*(one(argv) for argv in runs))

    crashed = [f"{' '.join(e.argv)}: exit {e.code}: {e.stderr[-300:]}" for e in ended if e.crashed]
    assert crashed == [], f"{len(crashed)} of {len(ended)} runs crashed"
    assert {e.code for e in ended} <= DOCUMENTED
    wrong = [
        f"{' '.join(e.argv)}: exit {e.code}, expected {int(expected[e.argv])}: {e.stderr[-300:]}"
        for e in ended
        if e.code != expected[e.argv]
    ]
    assert wrong == []
