"""Shell completion (Typer's) works through the lazy command table of ``cli/main.py``.

Each test runs the installed ``autopilot`` script as a shell would: ``--show-completion`` and
``--install-completion`` for the setup, then the completion protocol itself (the shell sets
``_AUTOPILOT_COMPLETE`` and the words typed so far, and reads the candidates printed).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli.main import table
from tests.cli.test_cli_startup import loaded_by
from tests.temporal_env import executable


def autopilot(*args: str, env: dict[str, str | None], **protocol: str) -> str:
    """Run ``autopilot ARGS`` from bash: Typer sets up completion for the parent shell."""
    merged = {k: v for k, v in {**env, **protocol}.items() if v is not None}
    done = subprocess.run(
        ["bash", "-c", '"$0" "$@"; exit $?', executable("autopilot"), *args],
        env={"PATH": "/usr/bin:/bin", **merged},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def complete_bash(typed: str, env: dict[str, str | None]) -> list[str]:
    """The candidates bash is offered for the last word of ``typed`` (may be empty)."""
    words = typed.split(" ")
    out = autopilot(
        env=env,
        _AUTOPILOT_COMPLETE="complete_bash",
        COMP_WORDS=typed,
        COMP_CWORD=str(len(words) - 1),
    )
    return out.split()


def test_show_completion_prints_a_script_for_the_shell(isolated_state):
    script = autopilot("--show-completion", env=isolated_state)
    assert "complete -o default -F _autopilot_completion autopilot" in script
    assert "_AUTOPILOT_COMPLETE=complete_bash" in script


def test_install_completion_writes_the_script_and_sources_it(isolated_state):
    home = Path(str(isolated_state["HOME"]))
    home.mkdir(parents=True, exist_ok=True)
    out = autopilot("--install-completion", env=isolated_state)
    assert "bash completion installed" in out
    installed = home / ".bash_completions" / "autopilot.sh"
    assert "_autopilot_completion" in installed.read_text()
    assert str(installed) in (home / ".bashrc").read_text()


def test_every_command_of_the_table_is_completed(isolated_state):
    assert complete_bash("autopilot ", isolated_state) == [entry.name for entry in table()]
    assert complete_bash("autopilot st", isolated_state) == ["status"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("autopilot status --", {"--namespace", "--operator", "--output", "--all-steps"}),
        ("autopilot list --o", {"--operator", "--output"}),
        ("autopilot canary ", {"start"}),
        ("autopilot canary start --i", {"--image"}),
    ],
)
def test_a_commands_options_and_subcommands_are_completed(isolated_state, typed, expected):
    assert expected <= set(complete_bash(typed, isolated_state))


async def test_completing_command_names_imports_no_client(isolated_state):
    code, modules = await loaded_by(
        env={
            **isolated_state,
            "_AUTOPILOT_COMPLETE": "complete_bash",
            "COMP_WORDS": "autopilot ",
            "COMP_CWORD": "1",
        }
    )
    assert code == 0
    assert sorted(modules & {"temporalio.client", "kubernetes", "workflows.registry"}) == []
