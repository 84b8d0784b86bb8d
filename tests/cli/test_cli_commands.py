"""Human commands from the terminal: `autopilot approve | pause | resume | abort | retry`."""

from __future__ import annotations

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
