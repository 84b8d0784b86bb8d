"""What ``cli/main.py`` reads from the commands' source, remembered between runs.

``autopilot --help`` lists every command's summary without importing the commands: it
parses their modules' source (``cli.main.summary_in_source``), and every run reads the
human commands' names from ``cli/commands.py`` the same way. Parsing all of them took a
tenth of the time ``--help`` takes; this file keeps the answers in the user's cache
directory (``${XDG_CACHE_HOME:-~/.cache}/autopilot/cli-source.json``).

An answer is reused only while the source file it was read from, and ``cli/main.py`` (which
decides what is read), have the size and modification time they had: an edited, upgraded or
reinstalled module is read again. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devcluster.paths import cache_root

#: The file, in Autopilot's cache directory.
FILE_NAME = "cli-source.json"
#: Entries kept at most (a few dozen are used; a bound keeps a stray writer from growing it).
MAX_ENTRIES = 500


def _stamp(path: str | None) -> list[Any] | None:
    """Path, size and modification time of a file, or None when it cannot be read."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [path, stat.st_size, stat.st_mtime_ns]


def _origin(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


class SourceCache:
    """Answers read from source files, by module and name, valid while the files are."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_root() / FILE_NAME
        self.reader = _stamp(str(Path(__file__).with_name("main.py")))
        self.changed = False
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        self.entries: dict[str, Any] = loaded if isinstance(loaded, dict) else {}

    def get(self, module: str, name: str, compute: Callable[[], object]) -> object:
        """The answer for ``name`` in ``module``: remembered, or ``compute()`` (then kept)."""
        key = f"{module}:{name}"
        stamp = [_stamp(_origin(module)), self.reader]
        found = self.entries.get(key)
        if isinstance(found, dict) and found.get("stamp") == stamp and stamp[0] is not None:
            return found.get("value")
        value = compute()
        if stamp[0] is not None and len(self.entries) < MAX_ENTRIES:
            self.entries[key] = {"stamp": stamp, "value": value}
            self.changed = True
        return value

    def save(self) -> None:
        """Write the answers computed in this run (atomically; failures are ignored)."""
        if not self.changed:
            return
        with contextlib.suppress(OSError, TypeError, ValueError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".cli-source-")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(self.entries, out)
                os.replace(temporary, self.path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        self.changed = False
