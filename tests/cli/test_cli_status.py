"""`autopilot list`, `status` and `watch` against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
import yaml

from models.operator import EngineSettings
from tests.cli.conftest import Invoke
from tests.engine.helpers import command, send, wait_for

pytestmark = pytest.mark.temporal


async def listed(autopilot: Invoke, env: dict[str, Any], *args: str, count: int) -> list[dict]:
    """`list -o json` once visibility shows ``count`` rows (it is eventually consistent)."""
    rows: list[dict] = []
    for _ in range(100):
        result = await autopilot("list", *args, "-o", "json", env=env)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        if len(rows) == count:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {count} rows, got {rows}")


async def test_list_filters_by_operator_namespace_and_state(autopilot, temporal_env, tickets):
    voted = await tickets.start(required_votes=1)
    waiting = await tickets.start()
    elsewhere = await tickets.start(namespace=f"{tickets.namespace}-other")
    await send(voted, "Vote", "v1", voter="ann")
    await wait_for(voted, "InReview")

    rows = await listed(
        autopilot, temporal_env, "--operator", "ticket", "-n", tickets.namespace, count=2
    )
    assert {r["workflow_id"] for r in rows} == {voted.id, waiting.id}
    assert elsewhere.id not in {r["workflow_id"] for r in rows}

    rows = await listed(
        autopilot, temporal_env, "-n", tickets.namespace, "--state", "InReview", count=1
    )
    assert rows[0]["workflow_id"] == voted.id
    assert rows[0]["operator"] == "ticket"
    assert rows[0]["target"] == f"{tickets.namespace}/{voted.id.rsplit('/', 1)[1]}"

    table = await autopilot(
        "list", "--operator", "ticket", "-n", tickets.namespace, env=temporal_env
    )
    assert table.exit_code == 0
    assert voted.id in table.stdout and waiting.id in table.stdout
    assert "InReview" in table.stdout and "Open" in table.stdout
    assert "AutopilotNamespace = " in table.stdout  # the query, to paste into the Temporal UI


async def test_list_hides_finished_workflows_unless_asked(autopilot, temporal_env, tickets):
    done = await tickets.start()
    await wait_for(done, "Open")
    await command(done, "abort", by="ann")
    await done.result()

    assert await listed(autopilot, temporal_env, "-n", tickets.namespace, count=0) == []
    rows = await listed(autopilot, temporal_env, "-n", tickets.namespace, "--all", count=1)
    assert rows[0]["state"] == "Cancelled" and rows[0]["execution"] == "Completed"


async def test_status_shows_state_steps_commands_and_the_ui_link(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "pause", by="dave", reason="change freeze")

    result = await autopilot("status", handle.id, env=temporal_env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "InReview" in out and "(paused)" in out
    assert "running" in out
    assert f"approval: autopilot approve {handle.id}" in out
    assert "abort, approve, resume" in out  # what the state accepts now
    assert "Open" in out and "Vote" in out  # the step so far
    assert "dave" in out and "change freeze" in out  # the command, who and why
    assert f"/namespaces/default/workflows/{handle.id.replace('/', '%2F')}" in out


async def test_status_as_json_and_yaml_carries_the_whole_status(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")

    as_json = json.loads(
        (await autopilot("status", handle.id, "-o", "json", env=temporal_env)).stdout
    )
    assert as_json["state"] == "InReview"
    assert as_json["outcome"] == "running"
    assert as_json["data"]["votes"] == 1
    assert as_json["execution"]["status"] == "Running"
    assert as_json["transitions"][-1]["target"] == "InReview"
    assert as_json["ui_url"].endswith(handle.id.replace("/", "%2F"))

    as_yaml = yaml.safe_load(
        (await autopilot("status", handle.id, "-o", "yaml", env=temporal_env)).stdout
    )
    assert as_yaml["state"] == "InReview"


async def test_status_of_a_finished_workflow_shows_how_it_ended(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "approve", by="carol", reason="ship it")
    await handle.result()

    result = await autopilot("status", handle.id, "-o", "json", env=temporal_env)
    status = json.loads(result.stdout)
    assert status["state"] == "Done" and status["outcome"] == "succeeded"
    assert status["execution"]["status"] == "Completed"
    assert status["commands"][0]["by"] == "carol"


async def test_status_of_a_workflow_that_failed_shows_why(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes="many")  # not an int: the spec is refused

    result = await autopilot("status", handle.id, env=temporal_env)
    for _ in range(50):
        if "Failed" in result.stdout:
            break
        await asyncio.sleep(0.2)
        result = await autopilot("status", handle.id, env=temporal_env)
    assert "Failed" in result.stdout and "failed" in result.stdout
    assert "spec.required_votes" in result.stdout


async def test_status_accepts_a_namespace_and_name_with_the_operator(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start()
    await wait_for(handle, "Open")
    name = handle.id.rsplit("/", 1)[1]

    result = await autopilot(
        "status",
        "-n",
        tickets.namespace,
        name,
        "--operator",
        "ticket",
        "-o",
        "json",
        env=temporal_env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["workflow_id"] == handle.id


async def test_status_without_a_worker_falls_back_to_what_temporal_knows(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start(task_queue="no-worker-polls-this")

    result = await autopilot("status", handle.id, env=temporal_env)
    assert result.exit_code == 0, result.output
    assert "no worker answered the status query" in result.stdout
    assert "autopilot worker" in result.stdout


async def test_an_unknown_target_exits_4_and_points_at_list(autopilot, temporal_env):
    result = await autopilot("status", "ticket/nowhere/nothing", env=temporal_env)
    assert result.exit_code == 4
    assert "no workflow ticket/nowhere/nothing; 'autopilot list' shows what runs" in result.stderr
    assert "Traceback" not in result.output


async def test_a_target_that_is_neither_an_id_nor_a_name_with_namespace_exits_2(
    autopilot, temporal_env
):
    result = await autopilot("status", "podinfo", env=temporal_env)
    assert result.exit_code == 2
    assert "-n NAMESPACE DEPLOYMENT" in result.stderr


async def test_watch_exits_0_when_the_machine_succeeds(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    )
    await command(handle, "approve", by="carol")
    result = await watching
    assert result.exit_code == 0, result.output
    assert "Applying" in result.stdout and "Done" in result.stdout
    assert "succeeded" in result.stdout


async def test_watch_exits_1_when_the_workflow_fails(autopilot, temporal_env, tickets):
    handle = await tickets.start()
    await wait_for(handle, "Open")

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    )
    await asyncio.sleep(0.5)
    await handle.terminate("operator error")
    result = await watching
    assert result.exit_code == 1, result.output
    assert "failed" in result.stdout


async def test_watch_exits_3_when_the_machine_settles_waiting(autopilot, temporal_env, tickets):
    handle = await tickets.start(required_votes=1, fail_apply=True)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    await command(handle, "approve", by="carol")

    result = await autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    assert result.exit_code == 3, result.output
    assert "Broken" in result.stdout and "waiting" in result.stdout
    assert "accepts: abort, pause, retry" in result.stdout


async def test_watch_on_a_terminal_redraws_the_status_until_the_end(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start(required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env={**temporal_env, "FORCE_COLOR": "1"})
    )
    await command(handle, "approve", by="carol")
    result = await watching
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stdout  # drawn for a terminal
    assert "Done" in result.stdout and "succeeded" in result.stdout


async def test_a_temporal_namespace_that_does_not_exist_exits_2(autopilot, temporal_env):
    result = await autopilot(
        "status", "ticket/shop/web", "--temporal-namespace", "nope", env=temporal_env
    )
    assert result.exit_code == 2, result.output
    assert "has no namespace 'nope'" in result.stderr
    listed = await autopilot("list", "--temporal-namespace", "nope", env=temporal_env)
    assert listed.exit_code == 2, listed.output


async def test_watch_prints_every_step_though_the_engine_keeps_only_the_last_two(
    temporal_env, isolated_state, tickets
):
    handle = await tickets.start(engine=EngineSettings(keep_records=2), required_votes=1)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    env = {**os.environ, **isolated_state, **temporal_env}
    # A real process, so the test knows when it is watching (its first line) before moving on.
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "watch", handle.id, "--interval", "0.2",
        env={k: v for k, v in env.items() if v is not None},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None
    first = await watch.stdout.readline()
    assert b"watching" in first and b"InReview" in first

    await command(handle, "approve", by="carol")
    rest = (await watch.stdout.read()).decode()
    assert await watch.wait() == 0, rest
    assert "InReview → Applying on /approve by carol" in rest
    assert "Applying → Done on Applied" in rest
