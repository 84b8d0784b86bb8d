"""The canary's GitOps contract: a rollback recorded in git (docs/gitops.md).

Kept apart from ``models/canary.py`` so that the canary's own models stay as they are: the
record is one event the rollback's git worker returns.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.events import Event
from models.limits import MAX_ENTRIES, MAX_NAME, MAX_URL


class RollbackRecorded(Event):
    """``canary.record_rollback`` opened the pull request setting the image back in git.

    ``unchanged``: git already names the stable images; ``not-configured``: the worker has
    no GitOps repository (the rollback stays a cluster change only).
    """

    outcome: Literal["opened", "found", "unchanged", "not-configured"]
    number: int | None = Field(default=None, ge=1)
    url: str | None = Field(default=None, max_length=MAX_URL)
    images: list[str] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="container=image pins written (the -primary's, the stable revision)",
    )
    branch: str | None = Field(default=None, max_length=4 * MAX_NAME)
