"""The smart-HTTP git server: plain git clones, pushes and fetches through it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.git_http import GitHttpServer, init_bare_repository


def git(*args: str, cwd: Path) -> str:
    """Run git with a fixed identity and no user configuration; return its stdout."""
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_TERMINAL_PROMPT": "0",
    }
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, f"git {' '.join(args)} failed: {completed.stderr}"
    return completed.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "repos"
    root.mkdir()
    init_bare_repository(root, "fleet/config.git")
    with GitHttpServer(root) as running:
        yield running


def clone(server: GitHttpServer, into: Path, *, branch: str | None = "main") -> Path:
    """Clone the test repository into ``into`` (on a new ``branch`` when it is empty)."""
    git("clone", "--quiet", server.repository_url("fleet/config.git"), into.name, cwd=into.parent)
    if branch:
        git("checkout", "--quiet", "-b", branch, cwd=into)
    return into


def commit_file(work: Path, name: str, text: str, message: str) -> None:
    (work / name).write_text(text)
    git("add", name, cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)


def test_a_clone_of_an_empty_repository_then_a_push_lands_on_the_server(
    server: GitHttpServer, tmp_path: Path
) -> None:
    work = clone(server, tmp_path / "work")
    commit_file(work, "vs.yaml", "kind: VirtualService\n", "add the VirtualService")
    git("push", "--quiet", "origin", "main", cwd=work)

    bare = server.root / "fleet" / "config.git"
    assert git("log", "--format=%s", "main", cwd=bare).strip() == "add the VirtualService"


def test_a_second_clone_fetches_what_another_pushed(server: GitHttpServer, tmp_path: Path) -> None:
    alice = clone(server, tmp_path / "alice")
    commit_file(alice, "a.yaml", "a: 1\n", "first")
    git("push", "--quiet", "origin", "main", cwd=alice)
    bob = clone(server, tmp_path / "bob", branch=None)

    commit_file(alice, "a.yaml", "a: 2\n", "second")
    git("push", "--quiet", "origin", "main", cwd=alice)
    git("fetch", "--quiet", "origin", cwd=bob)

    assert git("show", "origin/main:a.yaml", cwd=bob) == "a: 2\n"


def test_a_push_larger_than_git_s_post_buffer_is_accepted(
    server: GitHttpServer, tmp_path: Path
) -> None:
    """Over http.postBuffer git sends the pack chunked; the server must decode it."""
    work = clone(server, tmp_path / "work")
    (work / "big.bin").write_bytes(bytes(range(256)) * 8192 + b"x" * 7)
    git("add", "big.bin", cwd=work)
    git("commit", "--quiet", "-m", "big", cwd=work)
    git("-c", "http.postBuffer=65536", "push", "--quiet", "origin", "main", cwd=work)

    again = clone(server, tmp_path / "again", branch=None)
    assert (again / "big.bin").stat().st_size == 256 * 8192 + 7


def test_an_unknown_repository_is_not_found(server: GitHttpServer, tmp_path: Path) -> None:
    completed = subprocess.run(
        ["git", "ls-remote", server.repository_url("nobody/missing.git")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"},
        check=False,
    )
    assert completed.returncode != 0
    assert "not found" in completed.stderr.lower() or "404" in completed.stderr


def test_the_command_line_serves_until_terminated(tmp_path: Path) -> None:
    root = tmp_path / "repos"
    process = subprocess.Popen(
        [sys.executable, "-m", "devcluster.git_http", "--root", str(root), "--init", "r.git"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        refs = git("ls-remote", f"{url}/r.git", cwd=tmp_path)
        assert refs == ""  # empty, but served
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
