"""The GitHub webhook finds the instance a GitOps worker's branch names, step part included.

``models.gitops.branch_name`` writes ``autopilot/<operator>/<namespace>/<name>/<step>-<hash>``;
the webhook (``watchers.webhooks.github``) must signal ``<operator>/<namespace>/<name>`` for
it, as it does for the four-part name of a label. Pure mapping: no server.
"""

from __future__ import annotations

from typing import Any

from models.gitops import branch_name
from watchers.webhooks.github import PullRequestEvent, parse_instance_name, route_pull_request


def closed(branch: str, *, merged: bool) -> PullRequestEvent:
    body: dict[str, Any] = {
        "action": "closed",
        "pull_request": {
            "number": 7,
            "merged": merged,
            "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6" if merged else None,
            "head": {"ref": branch, "sha": "6dcb09b5b5"},
            "base": {"ref": "main", "sha": "9049f12665"},
        },
        "repository": {"full_name": "acme/config"},
        "sender": {"login": "ada"},
    }
    return PullRequestEvent.model_validate(body)


def test_a_merged_pull_request_from_a_workers_branch_signals_the_workflow_that_opened_it():
    branch = branch_name("quarantine/shop/payments", "run-1:3:quarantine.propose_release")
    assert branch.count("/") == 4

    routed = route_pull_request(closed(branch, merged=True), "delivery-1")

    assert not routed.ignored
    [request] = routed.requests
    assert (request.operator, request.target.namespace, request.target.name) == (
        "quarantine",
        "shop",
        "payments",
    )
    assert request.envelope.type == "PullRequestMerged"
    assert request.envelope.payload["sender"] == "ada"
    assert request.envelope.payload["head_ref"] == branch


def test_a_pull_request_closed_unmerged_from_a_workers_branch_is_pull_request_closed():
    branch = branch_name("canary/shop/checkout", "run-1:9:canary.record_rollback")
    [request] = route_pull_request(closed(branch, merged=False), "delivery-2").requests
    assert (request.operator, request.envelope.type) == ("canary", "PullRequestClosed")


def test_branch_names_with_more_parts_or_an_empty_step_name_no_instance():
    assert isinstance(parse_instance_name("autopilot/quarantine/shop/payments/a/b"), str)
    assert isinstance(parse_instance_name("autopilot/quarantine/shop/payments/"), str)
    assert parse_instance_name("autopilot/quarantine/shop/payments")[1].name == "payments"  # type: ignore[union-attr]
