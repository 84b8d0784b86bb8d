"""A target's approver rules decide who may give which commands, in the update's validator.

The ticket operator's spec declares ``approvers`` (as a Canary's does), so these tests give
commands as an ``Approval`` would (``via: kubernetes``, with the authenticated groups) and
as a direct Temporal update would (``via: temporal``), and check what the validator lets in.
A refused command changes nothing and never enters the workflow's history.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from models.operator import COMMAND_UPDATE, CommandReceipt, CommandRequest, CommandVia
from tests.engine.helpers import command, send, start, status, wait_for

LEADS_APPROVE = {
    "rules": [{"users": ["alice"], "groups": ["shop:leads"], "commands": ["approve"]}],
}


@pytest.fixture(scope="module")
def engine_env(dev_server_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return dev_server_env


async def _in_review(worker: Any, approvers: dict[str, Any] | None) -> WorkflowHandle[Any, Any]:
    spec: dict[str, Any] = {"required_votes": 1}
    if approvers is not None:
        spec["approvers"] = approvers
    handle = await start(worker.client, "ticket", worker.task_queue, spec=spec)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    return handle


def ask(name: str, by: str, via: CommandVia, *groups: str) -> CommandRequest:
    """A command as an Approval (``kubernetes``) or a direct update (``temporal``) gives it."""
    return CommandRequest(command=name, by=by, via=via, groups=list(groups))


async def _give(handle: WorkflowHandle[Any, Any], request: CommandRequest) -> CommandReceipt:
    receipt: CommandReceipt = await handle.execute_update(
        COMMAND_UPDATE, request, result_type=CommandReceipt
    )
    return receipt


async def _refusal(handle: WorkflowHandle[Any, Any], request: CommandRequest) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await _give(handle, request)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def _updates_in_history(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


async def test_a_user_the_rules_name_may_approve_through_an_approval(worker):
    handle = await _in_review(worker, LEADS_APPROVE)

    receipt = await _give(handle, ask("approve", "alice", "kubernetes"))

    assert receipt.applied and receipt.now in ("Applying", "Done")
    finished = await handle.result()
    assert [(c.command, c.by, c.via) for c in finished.commands] == [
        ("approve", "alice", "kubernetes")
    ]


async def test_a_member_of_a_group_the_rules_name_may_approve_through_an_approval(worker):
    handle = await _in_review(worker, LEADS_APPROVE)

    receipt = await _give(handle, ask("approve", "bob", "kubernetes", "shop:devs", "shop:leads"))

    assert receipt.applied
    assert (await handle.result()).state == "Done"


async def test_someone_the_rules_do_not_name_is_refused_with_who_may_and_nothing_changes(worker):
    handle = await _in_review(worker, LEADS_APPROVE)

    message = await _refusal(handle, ask("approve", "carol", "kubernetes", "shop:devs"))

    assert message == (
        f"carol may not give 'approve' on tests/{handle.id.rsplit('/', 1)[1]}: its approver "
        "rules allow only users alice or groups shop:leads"
    )
    current = await status(handle)
    assert (current.state, current.commands) == ("InReview", [])
    assert await _updates_in_history(handle) == 0


async def test_a_name_sent_straight_to_temporal_is_refused_for_a_ruled_command(worker):
    handle = await _in_review(worker, LEADS_APPROVE)

    message = await _refusal(handle, ask("approve", "alice", "temporal"))

    assert "restricted by its approver rules to users alice or groups shop:leads" in message
    assert "unchecked name ('alice'): use an Approval" in message
    assert (await status(handle)).state == "InReview"


async def test_a_command_no_rule_covers_is_given_as_before(worker):
    handle = await _in_review(worker, LEADS_APPROVE)

    receipt = await command(handle, "abort", by="anyone")

    assert receipt.applied and receipt.now == "Cancelled"
    await handle.result()


async def test_a_rule_without_commands_covers_every_command(worker):
    handle = await _in_review(worker, {"rules": [{"groups": ["shop:leads"]}]})

    message = await _refusal(handle, ask("abort", "dave", "kubernetes", "shop:devs"))

    assert "may not give 'abort'" in message and "groups shop:leads" in message


async def test_allowing_unauthenticated_names_matches_users_but_never_claimed_groups(worker):
    rules = {**LEADS_APPROVE, "allowUnauthenticated": True}
    handle = await _in_review(worker, rules)

    message = await _refusal(handle, ask("approve", "mallory", "temporal", "shop:leads"))
    receipt = await _give(handle, ask("approve", "alice", "temporal"))

    assert "mallory may not give 'approve'" in message
    assert receipt.applied
    assert (await handle.result()).state == "Done"


async def test_the_targets_own_resource_may_pause_whatever_the_rules(worker):
    handle = await _in_review(worker, {"rules": [{"users": ["alice"]}]})

    receipt = await _give(handle, ask("pause", "canary-resources watcher", "resource"))

    assert receipt.applied and (await status(handle)).paused


async def test_without_rules_a_direct_command_is_given_as_before(worker):
    handle = await _in_review(worker, None)

    receipt = await command(handle, "approve", by="anyone")

    assert receipt.applied
    assert (await handle.result()).state == "Done"
