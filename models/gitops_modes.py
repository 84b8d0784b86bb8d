"""How an operator's change reaches the cluster (its GitOps mode), and the review's events.

Three modes (docs/gitops.md, "Modes"):

* ``direct``: the worker changes the cluster, nothing is written to git (what Autopilot
  always did);
* ``direct-then-record``: the worker changes the cluster at once, then a pull request
  records the change so that git matches the cluster (containment cannot wait for a
  review);
* ``pull-request``: the change is a pull request; the workflow waits for its merge and for
  the GitOps engine to apply it.

A worker with no configuration repository (the ``gitops`` settings section) behaves as
``direct`` in every mode, and says so.

The events: ``PullRequestMerged`` and ``PullRequestClosed`` are what the GitHub webhook
(``watchers/webhooks/github.py``) sends to the instance a pull request's head branch names;
``PullRequestPolled`` is what the polling fallback returns when webhooks are lost. Fields
are the webhook's payload; unknown ones are ignored, so a new field never drops a merge.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from models.events import Event
from models.limits import MAX_NAME, MAX_URL

#: How a change reaches the cluster.
GitOpsMode = Literal["direct", "direct-then-record", "pull-request"]
GITOPS_MODES: tuple[GitOpsMode, ...] = ("direct", "direct-then-record", "pull-request")

#: What a worker that writes to git answers when the worker has no repository configured.
NOT_CONFIGURED = "not-configured"


class _PullRequestEvent(Event):
    """The GitHub webhook's payload for a pull request (``route_pull_request``)."""

    model_config = ConfigDict(extra="ignore")

    number: int = Field(ge=1)
    title: str = Field(default="", max_length=1024)
    url: str = Field(default="", max_length=MAX_URL)
    action: str = Field(default="", max_length=64)
    merged: bool = False
    merge_commit_sha: str | None = Field(default=None, max_length=64)
    head_ref: str = Field(default="", max_length=4 * MAX_NAME)
    head_sha: str = Field(default="", max_length=64)
    base_ref: str = Field(default="", max_length=MAX_NAME)
    repository: str = Field(default="", max_length=2 * MAX_NAME)
    sender: str = Field(default="", max_length=MAX_NAME, description="who merged or closed it")


class PullRequestMerged(_PullRequestEvent):
    """A pull request of this instance was merged (GitHub webhook)."""


class PullRequestClosed(_PullRequestEvent):
    """A pull request of this instance was closed without merging (GitHub webhook)."""


class PullRequestPolled(Event):
    """The polling fallback read a pull request: still open, merged, or closed unmerged."""

    number: int = Field(ge=1)
    state: Literal["open", "merged", "closed"]
    merge_sha: str | None = Field(default=None, max_length=64)
    url: str = Field(default="", max_length=MAX_URL)
