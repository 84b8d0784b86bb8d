"""What ``--help`` reads from the commands' source is remembered, and read again once edited."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cli.source_cache import FILE_NAME, SourceCache
from tests.temporal_env import executable


def never() -> object:
    raise AssertionError("the source was read again")


def test_an_answer_is_remembered_until_its_source_file_changes(tmp_path, monkeypatch):
    source = tmp_path / "some_commands.py"
    source.write_text('COMMANDS = {"go": "Go."}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    cache = tmp_path / "cache" / FILE_NAME

    first = SourceCache(cache)
    assert first.get("some_commands", "COMMANDS", lambda: {"go": "Go."}) == {"go": "Go."}
    first.save()

    assert SourceCache(cache).get("some_commands", "COMMANDS", never) == {"go": "Go."}

    source.write_text('COMMANDS = {"go": "Go.", "stop": "Stop."}\n')
    edited = SourceCache(cache).get("some_commands", "COMMANDS", lambda: "read again")
    assert edited == "read again"


def test_an_unreadable_cache_is_ignored(tmp_path):
    cache = tmp_path / FILE_NAME
    cache.write_text("{not json")
    assert SourceCache(cache).get("cli.commands", "COMMANDS", lambda: "from source") == (
        "from source"
    )


def test_help_is_the_same_with_the_remembered_summaries(isolated_state, tmp_path):
    env = {k: v for k, v in isolated_state.items() if v is not None}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")

    def help_text() -> str:
        done = subprocess.run(
            [executable("autopilot"), "--help"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cold = help_text()
    assert (Path(env["XDG_CACHE_HOME"]) / "autopilot" / FILE_NAME).is_file()
    assert help_text() == cold
    assert "status" in cold and "Show where one operator instance is" in cold
