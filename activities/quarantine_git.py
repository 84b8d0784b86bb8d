"""The quarantine's GitOps workers: record the isolation in git, release it by pull request.

They write git only through the GitOps layer (:mod:`activities.gitops.pulls`): one branch
and one pull request per workflow step, whatever a crash interrupts. What they add is the
quarantine's part:

* ``quarantine.record_isolation``: the DENY AuthorizationPolicy exactly as it is in the
  cluster (read back, server-set fields left out) as a ``put`` change, so merging it
  changes nothing there and the GitOps engine keeps it from then on;
* ``quarantine.propose_release``: a ``remove`` of the policy's file; merging it lets the
  GitOps engine prune the policy;
* ``quarantine.poll_release``: one read of the release pull request (the workflow's timer
  repeats it every ``gitops.poll_interval_s``), the fallback for a lost webhook;
* ``quarantine.await_release_applied``: heartbeating, until the policy is gone from the
  cluster, or fails clearly after ``gitops.apply_timeout_s``.

With no repository configured (``AUTOPILOT_GITOPS_REPOSITORY`` unset) the first two answer
``not-configured`` and the workflow behaves as in mode ``direct``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.errors import non_retryable
from activities.gitops.pulls import open_pull_request_now, read_pull_request_now
from activities.quarantine import Json, read_policy
from models.gitops import (
    PullRequestChange,
    PullRequestOpened,
    PullRequestRef,
    PutManifest,
    RemoveManifest,
)
from models.gitops_modes import PullRequestPolled
from models.quarantine import (
    IsolationRecorded,
    QuarantineStep,
    ReleaseApplied,
    ReleaseProposed,
    policy_name,
)
from service.settings import GitOpsSettings

#: Metadata a GitOps engine or the API server sets, never written to git.
_SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_SERVER_LABEL_PREFIXES = ("kustomize.toolkit.fluxcd.io/", "argocd.argoproj.io/")
#: How often ``await_release_applied`` reads the policy, in seconds.
_APPLY_POLL_S = 1.0


def _configured() -> GitOpsSettings | None:
    settings = GitOpsSettings()
    return settings if settings.repository else None


def recorded_manifest(live: Json) -> Json:
    """The object as git should hold it: what was applied, without what the server added."""
    meta = live.get("metadata") or {}
    labels = {
        key: value
        for key, value in (meta.get("labels") or {}).items()
        if not key.startswith(_SERVER_LABEL_PREFIXES)
    }
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if key not in _SERVER_ANNOTATIONS
    }
    metadata: Json = {"name": meta["name"], "namespace": meta["namespace"]}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": metadata,
        "spec": live.get("spec") or {},
    }


def _target(step: QuarantineStep) -> str:
    return f"{step.target.namespace}/{step.target.name}"


async def _open(change: PullRequestChange) -> PullRequestOpened:
    return await asyncio.to_thread(open_pull_request_now, change)


@activity.defn(name="quarantine.record_isolation")
async def record_isolation(step: QuarantineStep) -> IsolationRecorded:
    """Open the pull request that writes the DENY policy, as applied, into git."""
    if _configured() is None:
        return IsolationRecorded(outcome="not-configured")
    live = await read_policy(step)
    if live is None:  # apply_deny_policy ran just before; a retry will find it
        raise RuntimeError(f"AuthorizationPolicy {policy_name(step.target)} is not in the cluster")
    first = step.data.first_alert
    alert = f" after the alert {first.alertname}" if first else ""
    change = PullRequestChange(
        workflow_id=step.workflow_id,
        step_key=step.step_key,
        title=f"quarantine: record the isolation of {_target(step)}",
        why=(
            f"Autopilot isolated {_target(step)}{alert}: the DENY AuthorizationPolicy "
            f"`{policy_name(step.target)}` is already in the cluster (containment does not wait "
            "for a review). Merging records it in git, so the GitOps engine keeps it; it "
            "changes nothing in the cluster. Closing it leaves the workload isolated, but git "
            "will not say so."
        ),
        changes=[PutManifest(manifest=recorded_manifest(live))],
    )
    opened = await _open(change)
    return IsolationRecorded(
        outcome=opened.outcome, number=opened.number, url=opened.url, branch=opened.branch
    )


@activity.defn(name="quarantine.propose_release")
async def propose_release(step: QuarantineStep) -> ReleaseProposed:
    """Open the pull request that removes the policy's file (``unchanged``: git lacks it)."""
    settings = _configured()
    if settings is None:
        return ReleaseProposed(outcome="not-configured")
    git = step.data.git
    by = f" by {git.release_by}" if git and git.release_by else ""
    reason = f": {git.release_reason}" if git and git.release_reason else ""
    change = PullRequestChange(
        workflow_id=step.workflow_id,
        step_key=step.step_key,
        title=f"quarantine: release {_target(step)}",
        why=(
            f"Release of {_target(step)} requested{by}{reason}. Merging removes the DENY "
            f"AuthorizationPolicy `{policy_name(step.target)}` from git; the GitOps engine then "
            "prunes it and traffic flows again. Closing it keeps the workload isolated."
        ),
        changes=[
            RemoveManifest(
                kind="AuthorizationPolicy",
                namespace=step.target.namespace,
                name=policy_name(step.target),
            )
        ],
    )
    opened = await _open(change)
    return ReleaseProposed(
        outcome=opened.outcome,
        number=opened.number,
        url=opened.url,
        branch=opened.branch,
        poll_interval_s=settings.poll_interval_s,
    )


@activity.defn(name="quarantine.poll_release")
async def poll_release(step: QuarantineStep) -> PullRequestPolled:
    """Read the release pull request once: open, merged or closed unmerged."""
    git = step.data.git
    if git is None or git.release_pr is None:
        raise non_retryable("no release pull request to read")
    state = await asyncio.to_thread(read_pull_request_now, PullRequestRef(number=git.release_pr))
    return PullRequestPolled(
        number=state.number, state=state.state, merge_sha=state.merge_sha, url=state.url
    )


@activity.defn(name="quarantine.await_release_applied")
async def await_release_applied(step: QuarantineStep) -> ReleaseApplied:
    """Wait until the policy is gone from the cluster: the GitOps engine applied the merge.

    Raises:
        ApplicationError: (non-retryable) still there after ``gitops.apply_timeout_s``, with
            what to look at.
    """
    settings = GitOpsSettings()
    name = policy_name(step.target)
    started = time.monotonic()
    while True:
        if await read_policy(step) is None:
            return ReleaseApplied(policy=name, waited_s=round(time.monotonic() - started, 3))
        waited = time.monotonic() - started
        if waited > settings.apply_timeout_s:
            git = step.data.git
            pr = f"pull request #{git.release_pr}" if git and git.release_pr else "the release"
            sha = f" ({git.release_merge_sha[:12]})" if git and git.release_merge_sha else ""
            raise non_retryable(
                f"{pr} was merged{sha}, but the AuthorizationPolicy {step.target.namespace}/"
                f"{name} is still in the cluster after {settings.apply_timeout_s:.0f}s: the "
                f"GitOps engine has not applied the merge (does it apply {settings.path} of "
                f"{settings.repository} with prune enabled? see its Kustomization or "
                "Application status); retry waits again"
            )
        activity.heartbeat(f"{name} still present after {waited:.0f}s")
        await asyncio.sleep(_APPLY_POLL_S)


#: Every GitOps activity of the quarantine, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [
    record_isolation,
    propose_release,
    poll_release,
    await_release_applied,
]
