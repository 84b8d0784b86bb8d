"""`autopilot new operator`: the generated operator registers itself and passes its own tests.

The operator is generated into a copy of the project's layout in a temporary directory, and
its tests run there with pytest in a subprocess, exactly as a user would run them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: What a project needs for an operator's tests: the packages, the worker, the test fixtures.
PROJECT_PARTS = (
    "models",
    "workflows",
    "activities",
    "service",
    "worker_main.py",
    "pyproject.toml",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/temporal_env.py",
    "tests/waiting.py",
    "tests/fixtures",
    "tests/operators/__init__.py",
    "tests/operators/support.py",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's layout (without the CLI's tests)."""
    root = tmp_path / "project"
    for part in PROJECT_PARTS:
        source, target = ROOT / part, root / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return root


async def run_in(project: Path, *args: str) -> tuple[int, str]:
    """Run ``python *args`` in ``project``, whose packages shadow the installed ones."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_a_new_operator_passes_its_generated_tests(autopilot, project):
    result = await autopilot("new", "operator", "door_lock", "--dir", str(project))
    assert result.exit_code == 0, result.output
    for path in (
        "models/door_lock.py",
        "workflows/door_lock.py",
        "activities/door_lock.py",
        "tests/operators/door_lock/test_door_lock.py",
        "docs/operators/door_lock.md",
    ):
        assert (project / path).is_file(), path
        assert str(project / path) in result.stdout

    code, output = await run_in(
        project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/operators/door_lock"
    )
    assert code == 0, output
    assert "6 passed" in output


async def test_the_generated_page_shows_the_diagram_describe_prints(autopilot, project):
    await autopilot("new", "operator", "door_lock", "--dir", str(project))
    code, diagram = await run_in(project, "-m", "cli", "describe", "door_lock", "--mermaid")
    assert code == 0, diagram
    page = (project / "docs/operators/door_lock.md").read_text()
    assert f"```mermaid\n{diagram.strip()}\n```" in page
    assert "autopilot.dev/door_lock" in page


async def test_a_new_operator_with_an_underscore_gets_its_commands_on_the_cli(autopilot, project):
    await autopilot("new", "operator", "door_lock", "--dir", str(project))
    code, output = await run_in(project, "-m", "cli", "door_lock", "--help")
    assert code == 0, output
    for command in ("approve", "abort", "retry", "pause", "resume"):
        assert command in output
    code, output = await run_in(project, "-m", "cli", "door_lock", "approve", "--help")
    assert code == 0, output
    assert "Approve the gate" in output


async def test_a_new_operator_registers_itself_and_can_be_described(autopilot, project):
    await autopilot("new", "operator", "door_lock", "--dir", str(project))

    code, output = await run_in(project, "-m", "cli", "describe", "door_lock", "--mermaid")
    assert code == 0, output
    assert "    AwaitingApproval --> Applying: /approve" in output

    code, output = await run_in(
        project,
        "-c",
        "import activities.door_lock as a; print(sorted(f.__temporal_activity_definition.name"
        " for f in a.ACTIVITIES))",
    )
    assert code == 0, output
    assert "['door_lock.apply_change', 'door_lock.prepare']" in output


async def test_the_generated_code_is_lint_clean_and_typed_for_short_usual_and_long_names(
    autopilot, project
):
    names = ["x", "door_lock", "a_name_of_thirty_characters_ok"]
    files: list[str] = []
    for name in names:  # one project, one ruff and one mypy run for the three
        assert (await autopilot("new", "operator", name, "--dir", str(project))).exit_code == 0
        files += [
            f"models/{name}.py",
            f"workflows/{name}.py",
            f"activities/{name}.py",
            f"tests/operators/{name}/__init__.py",
            f"tests/operators/{name}/test_{name}.py",
        ]
    code, output = await run_in(project, "-m", "ruff", "check", *files)
    assert code == 0, output
    code, output = await run_in(project, "-m", "ruff", "format", "--check", *files)
    assert code == 0, output
    code, output = await run_in(project, "-m", "mypy", *files)
    assert code == 0, output


async def test_an_existing_name_is_refused_and_nothing_is_written(autopilot, project):
    before = sorted(p.name for p in (project / "workflows").iterdir())
    result = await autopilot("new", "operator", "canary", "--dir", str(project))
    assert result.exit_code == 2
    assert "an operator named 'canary' exists already" in result.stderr
    assert sorted(p.name for p in (project / "workflows").iterdir()) == before

    assert (await autopilot("new", "operator", "door", "--dir", str(project))).exit_code == 0
    again = await autopilot("new", "operator", "door", "--dir", str(project))
    assert again.exit_code == 2
    assert "models/door.py" in again.stderr


@pytest.mark.parametrize(
    "name",
    [
        "Door",
        "door-lock",
        "2fa",
        "class",
        "door__lock",
        "workflow",
        "a_name_of_thirty_one_characters",
    ],
)
async def test_a_name_that_cannot_be_an_operator_is_refused(autopilot, project, name):
    result = await autopilot("new", "operator", name, "--dir", str(project))
    assert result.exit_code == 2
    assert repr(name) in result.stderr
    assert not (project / "models" / f"{name}.py").exists()


async def test_a_directory_that_is_not_a_project_is_refused(autopilot, tmp_path):
    result = await autopilot("new", "operator", "door", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "does not look like an Autopilot project" in result.stderr
