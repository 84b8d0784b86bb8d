"""How an operator's runs move between worker versions, said in its ``@workflow.defn``.

``@workflow.defn(name="canary", versioning_behavior=pinned())``: with Worker Versioning on
(:mod:`models.versioning`) a pinned run finishes on the version it started on, an
auto-upgrade run moves to the current version at its next task; with it off both are
``UNSPECIFIED``, which an unversioned worker requires. ``docs/operations.md`` says which
operator is which, and why.
"""

from __future__ import annotations

from temporalio.common import VersioningBehavior

from models import versioning


def pinned() -> VersioningBehavior:
    """Runs finish on the worker version they started on (when versioning is on)."""
    return VersioningBehavior.PINNED if versioning.enabled() else VersioningBehavior.UNSPECIFIED


def auto_upgrade() -> VersioningBehavior:
    """Runs move to the current worker version at their next task (when versioning is on)."""
    if versioning.enabled():
        return VersioningBehavior.AUTO_UPGRADE
    return VersioningBehavior.UNSPECIFIED
