"""`autopilot` imports only what the command it runs needs.

A command's module is imported when that command runs (``cli.main.LazyCommand``); the
top-level ``--help`` reads the summaries from the source. What is checked is which modules
a real process loaded, not how long it took (machines are noisy; ``bench/cli_latency.py``
measures the time).
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from cli.errors import Exit
from cli.main import load, summary_in_source, table

HEAVY = ("temporalio.client", "kubernetes", "yaml", "workflows.registry", "devcluster.cluster")


async def loaded_by(*argv: str, env: dict[str, str | None]) -> tuple[int, set[str]]:
    """Run ``autopilot ARGV`` through the console script's entry point; the modules it had."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(*sorted(sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['autopilot', *{list(argv)!r}]\n"
        "from cli.main import main\n"
        "main()\n"
    )
    merged = {**os.environ, **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env={k: v for k, v in merged.items() if v is not None},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, set(err.decode().split())


async def test_the_top_level_help_imports_no_client_and_no_workflow(isolated_state):
    code, modules = await loaded_by("--help", env=isolated_state)
    assert code == Exit.OK
    assert sorted(modules & set(HEAVY)) == []


async def test_status_imports_temporal_but_not_kubernetes_nor_the_workflows(isolated_state):
    code, modules = await loaded_by("status", "canary/shop/web", env=isolated_state)
    assert code == Exit.NO_TEMPORAL  # the isolated environment has no server
    assert "temporalio.client" in modules
    assert sorted(modules & {"kubernetes", "workflows.registry", "devcluster.cluster"}) == []


async def test_an_oversize_manifest_is_refused_before_any_client_is_imported(
    isolated_state, tmp_path
):
    huge = tmp_path / "huge.yaml"
    huge.write_text("spec:\n  analysis:\n    metrics:\n" + "    - name: m\n" * 30_000)
    code, modules = await loaded_by(
        "canary", "start", "podinfo", "-n", "shop", "-f", str(huge), env=isolated_state
    )
    assert code == Exit.INVALID
    assert sorted(modules & {"temporalio.client", "kubernetes"}) == []


@pytest.mark.parametrize("entry", table(), ids=lambda entry: entry.name)
def test_the_summary_read_from_the_source_is_the_commands_own(entry):
    summary = summary_in_source(entry)
    help_text = load(entry).help
    assert summary is not None, f"cli/main.py cannot read {entry.name}'s summary from source"
    assert help_text is not None
    assert summary.split("\n\n")[0] == help_text.split("\n\n")[0]
