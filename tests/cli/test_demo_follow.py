"""The demo follows the rollout of the revision it announced, not the one before it."""

from datetime import UTC, datetime
from typing import Any

from cli.demo_rollout import is_over
from models.operator import OperatorStatus, Target


def _status(state: str, outcome: str, data: dict[str, Any]) -> OperatorStatus:
    return OperatorStatus(
        workflow_id="canary/demo/podinfo",
        operator="canary",
        target=Target(namespace="demo", name="podinfo"),
        state=state,
        final=outcome != "running",
        settled=outcome != "running",
        outcome=outcome,
        paused=False,
        since=datetime(2026, 12, 2, tzinfo=UTC),
        data=data,
    )


def test_the_previous_rollouts_final_state_is_not_the_new_ones_outcome() -> None:
    """A workflow that has not yet handled v2's signal still shows v1 Succeeded."""
    v1_done = _status("Succeeded", "succeeded", {"revision": "v1hash", "outcome": "initialized"})
    assert not is_over(v1_done, "v2hash")


def test_a_rollout_that_is_still_initializing_is_not_over() -> None:
    assert not is_over(_status("Initializing", "running", {}), "v2hash")


def test_the_announced_revision_in_a_final_state_is_over() -> None:
    v2_done = _status("Succeeded", "succeeded", {"revision": "v2hash", "outcome": "promoted"})
    assert is_over(v2_done, "v2hash")
