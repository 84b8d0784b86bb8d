"""Whether this process's worker runs with Temporal Worker Versioning.

Why a flag here: a workflow type's versioning behaviour is part of its ``@workflow.defn``,
and the server refuses a behaviour from a worker that is not versioned ("versioning
behavior cannot be specified without deployment options"). The worker process sets the flag
(:func:`enable`) before it imports any operator, and the definitions ask
(:func:`workflows.engine.versioning.pinned`) when their module is imported, outside the
workflow sandbox and inside it alike: ``models`` is shared with the sandbox, so both see the
same answer. A process that never enables it (tests, an unversioned worker) declares no
behaviour at all.
"""

from __future__ import annotations

_enabled = False


def enable() -> None:
    """This process's workers are versioned (``AUTOPILOT_BUILD_ID`` is set)."""
    global _enabled
    _enabled = True


def enabled() -> bool:
    """Whether :func:`enable` was called."""
    return _enabled
