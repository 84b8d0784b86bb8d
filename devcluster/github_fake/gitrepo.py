"""The real bare git repository behind the FAKE GitHub, driven with git's plumbing.

Every write the fake's REST API accepts becomes a real commit (``hash-object``,
``update-index`` on a private index, ``write-tree``, ``commit-tree``) and every ref move is a
compare-and-swap ``update-ref``, so a clone over smart HTTP (Flux, plain git) sees exactly
what the API reported, and merging a pull request makes a real two-parent merge commit
(``merge-tree --write-tree``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devcluster.git_http import git_executable, init_bare_repository

#: An all-zero object name: "no commit" in webhooks and update-ref.
ZERO_SHA = "0" * 40


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


class RefConflict(GitError):
    """A ref was not where the caller expected (it moved, or already exists)."""


class MergeConflict(GitError):
    """The head does not merge cleanly into the base."""


@dataclass(frozen=True)
class Identity:
    """Who authors and commits."""

    name: str
    email: str


@dataclass(frozen=True)
class CommitInfo:
    """One commit, as the API shows it."""

    sha: str
    tree: str
    parents: list[str]
    author: Identity
    author_date: str
    committer: Identity
    committer_date: str
    message: str


@dataclass(frozen=True)
class FileChanges:
    """The paths one commit added, modified and removed (against its first parent)."""

    added: list[str]
    modified: list[str]
    removed: list[str]


class GitRepository:
    """A bare repository: read files at refs, commit files on branches, move refs, merge."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()

    @classmethod
    def create(cls, root: Path, name: str, *, initial_branch: str = "main") -> GitRepository:
        """Create (or open) the bare repository ``root/name``."""
        return cls(init_bare_repository(root, name, initial_branch=initial_branch))

    # -- plumbing ------------------------------------------------------------------

    def _git(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        ok: tuple[int, ...] = (0,),
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_DIR": str(self.path),
            **(env or {}),
        }
        completed = subprocess.run(
            [git_executable(), *args],
            input=stdin,
            capture_output=True,
            env=full_env,
            check=False,
        )
        if completed.returncode not in ok:
            raise GitError(f"git {args[0]}: {completed.stderr.decode(errors='replace').strip()}")
        return completed

    def _out(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> str:
        return self._git(*args, stdin=stdin, env=env).stdout.decode().strip()

    # -- reads ---------------------------------------------------------------------

    def resolve(self, ref: str) -> str | None:
        """The commit a ref (``refs/heads/main``) or branch (``main``) names, or None."""
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        completed = self._git("rev-parse", "--verify", "--quiet", f"{full}^{{commit}}", ok=(0, 1))
        return completed.stdout.decode().strip() or None

    def resolve_commitish(self, name: str) -> str | None:
        """A branch, a full ref or a commit SHA, as the contents API's ``ref`` accepts."""
        found = self.resolve(name)
        if found is not None:
            return found
        completed = self._git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", ok=(0, 1))
        return completed.stdout.decode().strip() or None

    def branches(self) -> dict[str, str]:
        """Every branch and the commit it points at."""
        out = self._out("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in pairs}

    def read_file(self, commit: str, path: str) -> tuple[str, bytes] | None:
        """The blob SHA and bytes of ``path`` at ``commit``, or None if it is not a file."""
        completed = self._git("ls-tree", "-z", commit, "--", path)
        entry = completed.stdout.rstrip(b"\0")
        if not entry:
            return None
        meta, _, name = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split()
        if kind != "blob" or name.decode() != path:
            return None
        return sha, self._git("cat-file", "blob", sha).stdout

    def commit_info(self, sha: str) -> CommitInfo:
        """Author, committer, parents, tree and message of a commit."""
        fields = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        raw = self._git("show", "-s", f"--format={fields}", sha).stdout.decode()
        parts = raw.split("\0")
        return CommitInfo(
            sha=parts[0],
            tree=parts[1],
            parents=parts[2].split(),
            author=Identity(parts[3], parts[4]),
            author_date=_utc(parts[5]),
            committer=Identity(parts[6], parts[7]),
            committer_date=_utc(parts[8]),
            message=parts[9].rstrip("\n"),
        )

    def commits_between(self, old: str | None, new: str) -> list[str]:
        """Commits reachable from ``new`` and not from ``old``, oldest first."""
        spec = new if old in (None, ZERO_SHA) else f"{old}..{new}"
        return self._out("rev-list", "--reverse", "--topo-order", spec).split()

    def changes(self, sha: str) -> FileChanges:
        """What a commit changed against its first parent (everything, for a root commit)."""
        added: list[str] = []
        modified: list[str] = []
        removed: list[str] = []
        out = self._out(
            "diff-tree",
            "-r",
            "--no-commit-id",
            "--root",
            "--name-status",
            "-m",
            "--first-parent",
            sha,
        )
        for line in out.splitlines():
            status, _, path = line.partition("\t")
            {"A": added, "D": removed}.get(status[:1], modified).append(path)
        return FileChanges(added, modified, removed)

    def ahead_of(self, base: str, head: str) -> int:
        """How many commits ``head`` has that ``base`` has not."""
        return int(self._out("rev-list", "--count", f"{base}..{head}"))

    def diff_stat(self, base: str, head: str) -> tuple[int, int, int]:
        """Additions, deletions and changed files from the merge base of both to ``head``."""
        out = self._out("diff", "--numstat", f"{base}...{head}")
        additions = deletions = files = 0
        for line in out.splitlines():
            plus, minus, _path = line.split("\t", 2)
            additions += int(plus) if plus.isdigit() else 0
            deletions += int(minus) if minus.isdigit() else 0
            files += 1
        return additions, deletions, files

    # -- writes --------------------------------------------------------------------

    def update_ref(self, ref: str, new: str, old: str | None) -> None:
        """Move ``ref`` to ``new`` only if it is at ``old`` (None: only if it does not exist)."""
        completed = self._git("update-ref", ref, new, old or ZERO_SHA, ok=(0, 1, 128))
        if completed.returncode != 0:
            raise RefConflict(completed.stderr.decode(errors="replace").strip())

    def commit_files(
        self,
        branch: str,
        changes: dict[str, bytes | None],
        message: str,
        who: Identity,
        *,
        parent: str | None,
        when: str,
    ) -> str:
        """Commit ``changes`` (path to bytes, or None to remove) on top of ``parent``.

        The branch moves only if it is still at ``parent``; returns the new commit.
        """
        with tempfile.TemporaryDirectory(prefix="fake-github-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent is not None:
                self._git("read-tree", parent, env=env)
            # --index-info takes "<mode> <object>\t<path>"; mode 0 removes the entry.
            lines = []
            for path, content in changes.items():
                if content is None:
                    lines.append(f"0 {ZERO_SHA}\t{path}\n")
                    continue
                blob = self._out("hash-object", "-w", "--stdin", stdin=content)
                lines.append(f"100644 {blob}\t{path}\n")
            self._git("update-index", "--index-info", stdin="".join(lines).encode(), env=env)
            tree = self._out("write-tree", env=env)
        parents = ["-p", parent] if parent else []
        commit = self._out(
            "commit-tree", tree, *parents, "-m", message, env=_identity_env(who, when)
        )
        self.update_ref(f"refs/heads/{branch}", commit, parent)
        return commit

    def merge(self, base: str, head: str, message: str, who: Identity, *, when: str) -> str:
        """Merge branch ``head`` into branch ``base`` with a merge commit; return it.

        Raises:
            MergeConflict: The two do not merge cleanly.
            RefConflict: The base moved meanwhile.
        """
        base_sha = self.resolve(base)
        head_sha = self.resolve(head)
        if base_sha is None or head_sha is None:
            raise GitError(f"cannot merge {head} into {base}: a branch is missing")
        completed = self._git(
            "merge-tree", "--write-tree", "--no-messages", base_sha, head_sha, ok=(0, 1)
        )
        if completed.returncode == 1:
            raise MergeConflict(f"{head} does not merge cleanly into {base}")
        tree = completed.stdout.decode().split()[0]
        commit = self._out(
            "commit-tree",
            tree,
            "-p",
            base_sha,
            "-p",
            head_sha,
            "-m",
            message,
            env=_identity_env(who, when),
        )
        self.update_ref(f"refs/heads/{base}", commit, base_sha)
        return commit


def _identity_env(who: Identity, when: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": who.name,
        "GIT_AUTHOR_EMAIL": who.email,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": who.name,
        "GIT_COMMITTER_EMAIL": who.email,
        "GIT_COMMITTER_DATE": when,
    }


def _utc(iso: str) -> str:
    """git's ISO 8601 date as GitHub writes it (``2026-01-02T03:04:05Z``)."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
