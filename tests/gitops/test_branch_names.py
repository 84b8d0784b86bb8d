"""Branch names: the same for every retry of a step, distinct across steps, valid for git."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from models.gitops import branch_name

WORKFLOW = "canary/shop/checkout"


def test_a_retry_of_a_step_gets_the_same_branch_and_another_step_another() -> None:
    first = branch_name(WORKFLOW, "run-1:4:gitops.open_pull_request")
    assert first == branch_name(WORKFLOW, "run-1:4:gitops.open_pull_request")
    assert first != branch_name(WORKFLOW, "run-1:5:gitops.open_pull_request")
    assert first != branch_name("canary/shop/cart", "run-1:4:gitops.open_pull_request")
    assert first.startswith("autopilot/canary/shop/checkout/4-gitops.open_pull_request-")


@settings(max_examples=50, deadline=None)  # each example runs git once
@given(st.text(min_size=1, max_size=200))
def test_any_step_key_makes_a_branch_name_git_accepts(step_key: str) -> None:
    name = branch_name(WORKFLOW, step_key)
    assert len(name) <= 200
    checked = subprocess.run(
        ["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False
    )
    assert checked.returncode == 0, name
