"""Every command explains itself: `--help` shows what it does and an example."""

from __future__ import annotations

import pytest

import worker_main

COMMANDS = [
    ["list"],
    ["status"],
    ["watch"],
    ["approve"],
    ["promote"],
    ["pause"],
    ["resume"],
    ["abort"],
    ["retry"],
    ["release"],
    ["remediate"],
    ["escalate"],
    ["lint"],
    ["demo"],
    ["describe"],
    ["worker"],
    ["canary", "start"],
    ["new", "operator"],
    ["dev", "up"],
    ["dev", "down"],
    ["dev", "status"],
    ["dev", "env"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
async def test_help_shows_an_example(autopilot, command):
    result = await autopilot(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert f"autopilot {' '.join(command)}" in result.stdout


async def test_the_top_level_help_lists_the_commands_and_exit_codes(autopilot):
    result = await autopilot("--help")
    assert result.exit_code == 0
    names = ("canary", "list", "status", "watch", "approve", "describe", "new", "worker", "dev")
    for name in names:
        assert name in result.stdout
    assert "4 unknown target" in result.stdout and "5 Temporal unreachable" in result.stdout


async def test_worker_passes_its_arguments_to_the_worker(autopilot):
    if not hasattr(worker_main, "main"):
        pytest.skip("worker_main.main is not written yet")
    result = await autopilot("worker", "--", "--help")
    assert result.exit_code == 0, result.output
    assert "usage" in result.output.lower()
