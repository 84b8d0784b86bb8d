"""The canary's GitOps worker: a rollback recorded in git, so Flux does not re-apply it.

When a canary rolls back, traffic is back on ``<target>-primary`` (the stable revision), but
the configuration repository still names the rejected image in the target Deployment: a
GitOps engine would apply it again on its next sync. ``canary.record_rollback`` opens a pull
request (through :mod:`activities.gitops.pulls`, one per step) that sets each container of
the target back to the image ``-primary`` runs (``set-image`` changes). With no repository
configured it answers ``not-configured``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity

from activities.canary.workloads import primary_name, read_or_none
from activities.gitops.pulls import open_pull_request_now
from models.canary import CanaryStep
from models.canary_git import RollbackRecorded
from models.gitops import PullRequestChange, SetImage
from service.settings import GitOpsSettings


def _containers(deployment: dict[str, Any] | None) -> dict[str, str]:
    spec = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return {c["name"]: c["image"] for c in spec.get("containers") or [] if c.get("image")}


@activity.defn(name="canary.record_rollback")
async def record_rollback(step: CanaryStep) -> RollbackRecorded:
    """Open the pull request that pins the target's images to the stable revision's."""
    if not GitOpsSettings().repository:
        return RollbackRecorded(outcome="not-configured")
    namespace, target = step.target.namespace, step.spec.target_ref.name
    stable = _containers(await read_or_none(namespace, primary_name(target)))
    if not stable:
        raise RuntimeError(f"Deployment {namespace}/{primary_name(target)} has no containers yet")
    changes = [
        SetImage(namespace=namespace, name=target, container=name, image=image)
        for name, image in sorted(stable.items())
    ]
    images = [f"{name}={image}" for name, image in sorted(stable.items())]
    failure = step.data.failure or "the analysis failed"
    change = PullRequestChange(
        workflow_id=step.workflow_id,
        step_key=step.step_key,
        title=f"canary: roll {namespace}/{target} back to {', '.join(images)}",
        why=(
            f"The canary of {namespace}/{target} rolled revision {step.data.revision} back: "
            f"{failure}. Traffic is already on the stable revision ({', '.join(images)}); "
            "merging sets the Deployment in git back to it, so the GitOps engine does not "
            "apply the rejected revision again."
        ),
        changes=changes,
    )
    opened = await asyncio.to_thread(open_pull_request_now, change)
    return RollbackRecorded(
        outcome=opened.outcome,
        number=opened.number,
        url=opened.url,
        images=images,
        branch=opened.branch,
    )
