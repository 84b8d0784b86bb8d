"""GitHub ``pull_request`` webhooks as the webhook receives them, and their delivery.

The body is mapped by ``watchers.webhooks.github.route_pull_request`` (the instance named by
the head branch a GitOps worker writes, step part included) and handed to
``watchers.delivery.Delivery``; only the HTTP hop is skipped.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client

from models.gitops import branch_name
from models.operator import workflow_id
from watchers.delivery import Delivery, Outcome
from watchers.webhooks.github import PullRequestEvent, route_pull_request


def pull_request_event(
    namespace: str, name: str, number: int, *, merged: bool, by: str = "reviewer"
) -> dict[str, Any]:
    """A ``closed`` pull_request delivery for a PR the quarantine's worker opened."""
    branch = branch_name(workflow_id("quarantine", namespace, name), f"run:{number}:step")
    return {
        "action": "closed",
        "number": number,
        "pull_request": {
            "number": number,
            "title": f"quarantine: {namespace}/{name}",
            "html_url": f"https://git.example/acme/config/pull/{number}",
            "merged": merged,
            "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6" if merged else None,
            "head": {"ref": branch, "sha": "6dcb09b5b5"},
            "base": {"ref": "main", "sha": "9049f12665"},
            "labels": [],
        },
        "repository": {"full_name": "acme/config", "default_branch": "main"},
        "sender": {"login": by},
    }


async def deliver_pull_request(client: Client, task_queue: str, body: dict[str, Any]) -> None:
    """Route ``body`` as the GitHub webhook does and signal the instance its branch names."""
    routed = route_pull_request(PullRequestEvent.model_validate(body), str(uuid.uuid4()))
    assert routed.requests and not routed.ignored, routed.ignored
    results = await Delivery(client, task_queue=task_queue).deliver_many(routed.requests)
    assert all(r.outcome is Outcome.DELIVERED for r in results), [r.as_dict() for r in results]
