"""Human commands from the terminal: `autopilot approve | pause | resume | abort | retry`."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.engine.helpers import send, status, wait_for

pytestmark = pytest.mark.temporal


async def test_an_accepted_approve_prints_a_receipt_naming_who_gave_it(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")

    result = await autopilot(
        "approve", handle.id, "--as", "carol", "--reason", "looks safe", env=temporal_env
    )
    assert result.exit_code == 0, result.output
    assert f"approve accepted from carol for {handle.id} in state InReview" in result.stdout
    assert "now Applying" in result.stdout

    final = await handle.result()
    assert [(c.command, c.by, c.reason) for c in final.commands] == [
        ("approve", "carol", "looks safe")
    ]


async def test_the_identity_defaults_to_the_configured_one(autopilot, temporal_env, tickets):
    handle = await tickets.start()
    await wait_for(handle, "Open")

    result = await autopilot(
        "pause",
        handle.id,
        "-o",
        "json",
        env={**temporal_env, "AUTOPILOT_TEMPORAL_IDENTITY": "ops-bot"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by"] == "ops-bot"
    assert (await status(handle)).commands[-1].by == "ops-bot"


async def test_a_refused_command_prints_the_workflows_message_and_exits_1(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start()
    await wait_for(handle, "Open")

    result = await autopilot("approve", handle.id, env=temporal_env)
    assert result.exit_code == 1
    assert "approve refused: 'approve' is not accepted in state Open" in result.stderr
    assert "accepted here: abort, pause" in result.stderr
    assert (await status(handle)).commands == []  # never entered history


async def test_pause_and_resume_by_namespace_and_name(autopilot, temporal_env, tickets):
    handle = await tickets.start()
    await wait_for(handle, "Open")
    name = handle.id.rsplit("/", 1)[1]
    by_name = ["-n", tickets.namespace, name, "--operator", "ticket"]

    paused = await autopilot("pause", *by_name, "--reason", "freeze", env=temporal_env)
    assert paused.exit_code == 0, paused.output
    assert (await status(handle)).paused

    resumed = await autopilot("resume", *by_name, env=temporal_env)
    assert resumed.exit_code == 0, resumed.output
    current = await status(handle)
    assert not current.paused
    assert [(c.command, c.reason) for c in current.commands] == [
        ("pause", "freeze"),
        ("resume", None),
    ]


async def test_abort_ends_the_machine_and_a_later_command_says_it_has_finished(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start()
    await wait_for(handle, "Open")

    aborted = await autopilot("abort", handle.id, "--reason", "not needed", env=temporal_env)
    assert aborted.exit_code == 0, aborted.output
    assert "now Cancelled" in aborted.stdout
    await handle.result()

    late = await autopilot("retry", handle.id, env=temporal_env)
    assert late.exit_code == 1
    assert "has finished (Completed); it accepts no commands" in late.stderr


async def test_a_command_for_an_unknown_target_exits_4(autopilot, temporal_env):
    result = await autopilot("approve", "ticket/nowhere/nothing", env=temporal_env)
    assert result.exit_code == 4
    assert "no workflow ticket/nowhere/nothing" in result.stderr


async def _accepted_updates(handle) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    )


async def test_a_command_the_machine_outran_is_reported_superseded_with_the_reason_and_exit_1(
    autopilot, temporal_env, tickets
):
    from tests.engine.ticket_operator import release_apply
    from tests.waiting import eventually

    handle = await tickets.start(required_votes=1, hold_apply=True)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    approved = await autopilot("approve", handle.id, env=temporal_env)
    assert approved.exit_code == 0, approved.output
    await wait_for(handle, "Applying")

    pause = asyncio.ensure_future(autopilot("pause", handle.id, env=temporal_env))
    await eventually(lambda: _accepted_updates(handle), lambda n: n == 2, what="pause accepted")
    release_apply(handle.id)
    result = await pause

    assert result.exit_code == 1, result.output
    assert f"pause accepted from tester for {handle.id} in state Applying" in result.stdout
    assert "superseded: the machine reached Done, a final state" in result.stdout
    final = await handle.result()
    assert [(c.command, c.outcome) for c in final.commands] == [
        ("approve", "applied"),
        ("pause", "superseded"),
    ]


async def test_a_command_still_queued_when_the_wait_runs_out_exits_3_and_says_so(
    autopilot, temporal_env, tickets
):
    from tests.engine.ticket_operator import release_apply

    handle = await tickets.start(required_votes=1, hold_apply=True)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await autopilot("approve", handle.id, env=temporal_env)
    await wait_for(handle, "Applying")

    try:
        result = await autopilot("pause", handle.id, "--wait", "1", env=temporal_env)
        assert result.exit_code == 3, result.output
        assert "accepted from tester" in result.stdout and "and queued" in result.stdout
        assert "'autopilot status" in result.stdout
    finally:
        release_apply(handle.id)
    final = await handle.result()
    assert final.commands[-1].command == "pause"
