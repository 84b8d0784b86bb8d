"""The GitOps workers: a change to manifests as a GitHub pull request, and its state.

The worker registers :data:`ACTIVITIES`; workflows name them (``gitops.open_pull_request``,
``gitops.read_pull_request``) with the models of :mod:`models.gitops`. See docs/gitops.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.gitops.pulls import open_pull_request, read_pull_request

#: Every GitOps activity, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [open_pull_request, read_pull_request]
