"""`autopilot list`, `status` and `watch` against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
import yaml
from temporalio.client import WorkflowHandle

from models.operator import EngineSettings
from tests.cli.conftest import Invoke, Tickets
from tests.engine.helpers import command, send, wait_for
from tests.engine.ticket_operator import release_apply

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


async def in_review(tickets: Tickets, **spec: Any) -> WorkflowHandle[Any, Any]:
    """A ticket voted through to ``InReview``, where it waits for ``approve``."""
    handle = await tickets.start(required_votes=1, **spec)
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview")
    return handle


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
    handle = await in_review(tickets)
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


async def test_status_shows_the_targets_approver_rules(autopilot, temporal_env, tickets):
    rules = {"rules": [{"groups": ["shop:leads"], "commands": ["approve"]}]}
    handle = await in_review(tickets, approvers=rules)

    result = await autopilot("status", handle.id, env=temporal_env)

    assert result.exit_code == 0, result.output
    assert "approvers" in result.stdout and "approve: groups shop:leads" in result.stdout


async def test_status_as_json_and_yaml_carries_the_whole_status(autopilot, temporal_env, tickets):
    handle = await in_review(tickets)

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
    handle = await in_review(tickets)
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
    handle = await in_review(tickets)

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    )
    await command(handle, "approve", by="carol")
    result = await watching
    assert result.exit_code == 0, result.output
    assert "Applying" in result.stdout and "Done" in result.stdout
    assert "succeeded" in result.stdout


async def test_watch_exits_1_when_the_workflow_fails(autopilot, temporal_env, tickets):
    # Applying, with its worker held: a state that is still moving (Open is settled).
    handle = await in_review(tickets, hold_apply=True)
    await command(handle, "approve", by="carol")
    await wait_for(handle, "Applying")

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    )
    await asyncio.sleep(0.5)
    await handle.terminate("operator error")
    release_apply(handle.id)
    result = await watching
    assert result.exit_code == 1, result.output
    assert "failed" in result.stdout


async def test_watch_exits_3_when_the_machine_settles_waiting(autopilot, temporal_env, tickets):
    handle = await in_review(tickets, fail_apply=True)
    await command(handle, "approve", by="carol")

    result = await autopilot("watch", handle.id, "--interval", "0.2", env=temporal_env)
    assert result.exit_code == 3, result.output
    assert "Broken" in result.stdout and "waiting" in result.stdout
    assert "accepts: abort, pause, retry" in result.stdout


async def test_watch_on_a_terminal_redraws_the_status_until_the_end(
    autopilot, temporal_env, tickets
):
    handle = await in_review(tickets)

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


async def watching(env: dict[str, str | None], *args: str) -> asyncio.subprocess.Process:
    """``autopilot watch ARGS`` in a real process, once it printed its first line.

    A process, so the test knows when it is watching before it moves the machine on.
    """
    merged = {**os.environ, **env}
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "watch", *args, "--interval", "0.2",
        env={k: v for k, v in merged.items() if v is not None},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None
    first = await watch.stdout.readline()
    assert b"watching" in first, first
    return watch


async def rest_of(watch: asyncio.subprocess.Process) -> tuple[int, str]:
    """The exit code and everything ``watch`` printed after its first line."""
    assert watch.stdout is not None
    rest = (await watch.stdout.read()).decode()
    return await watch.wait(), rest


async def test_watch_prints_every_step_though_the_engine_keeps_only_the_last_two(
    temporal_env, isolated_state, tickets
):
    handle = await in_review(tickets, engine=EngineSettings(keep_records=2))
    watch = await watching({**isolated_state, **temporal_env}, handle.id)

    await command(handle, "approve", by="carol")
    code, rest = await rest_of(watch)
    assert code == 0, rest
    assert "InReview → Applying on /approve by carol" in rest
    assert "Applying → Done on Applied" in rest


# -- output in a pipe, a CI log, or for a script -------------------------------------------

#: A pipe as a CI runner gives it: no terminal, no COLUMNS (Rich would assume 80).
PIPE: dict[str, str | None] = {"COLUMNS": None, "FORCE_COLOR": None}


async def test_list_in_a_pipe_keeps_every_column_whole_and_the_link_on_one_line(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start()
    await wait_for(handle, "Open")
    await listed(autopilot, temporal_env, "-n", tickets.namespace, count=1)

    result = await autopilot("list", "-n", tickets.namespace, env={**temporal_env, **PIPE})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next((line for line in lines if "workflow status" in line), "")
    columns = ["workflow", "operator", "target", "state", "weight", "workflow status", "started"]
    assert [c.strip() for c in header.split("  ") if c.strip()] == columns
    assert "…" not in result.stdout
    assert any(handle.id in line and "Open" in line and "Running" in line for line in lines)
    link = next((line for line in lines if "in the Temporal UI:" in line), "")
    assert link.endswith("%20AND%20ExecutionStatus%20%3D%20%27Running%27")  # the whole query
    assert "\x1b[" not in result.stdout


async def test_status_in_a_pipe_prints_its_ui_link_on_one_line_without_colour(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start(namespace=f"{tickets.namespace}-with-a-rather-long-name")
    await wait_for(handle, "Open")
    url = f"/namespaces/default/workflows/{handle.id.replace('/', '%2F')}"

    result = await autopilot("status", handle.id, env={**temporal_env, **PIPE})
    assert result.exit_code == 0, result.output
    assert any(
        line.split()[:1] == ["ui"] and line.endswith(url) for line in result.stdout.splitlines()
    )
    assert "\x1b[" not in result.stdout


async def test_output_plain_has_no_escape_codes_even_on_a_terminal(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start()
    await wait_for(handle, "Open")
    terminal = {**temporal_env, "FORCE_COLOR": "1"}

    for args in (("status", handle.id), ("list", "-n", tickets.namespace)):
        coloured = await autopilot(*args, env=terminal)
        assert "\x1b[" in coloured.stdout, args  # the table format, drawn for a terminal
        plain = await autopilot(*args, "-o", "plain", env=terminal)
        assert plain.exit_code == 0, plain.output
        assert "\x1b[" not in plain.stdout, args
        assert handle.id in plain.stdout


async def test_watch_tells_an_event_taken_in_place_not_only_state_changes(
    autopilot, temporal_env, tickets
):
    handle = await tickets.start(required_votes=2)
    await wait_for(handle, "Open")

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", env={**temporal_env, **PIPE})
    )
    await send(handle, "Vote", "v1", voter="ann")  # counted; the ticket stays Open
    await send(handle, "Vote", "v2", voter="bob")
    await wait_for(handle, "InReview")
    await command(handle, "approve", by="carol")
    result = await watching
    assert result.exit_code == 0, result.output
    votes = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if " on Vote" in line]
    assert votes == ["Open (stays) on Vote", "Open → InReview on Vote"]  # each told once
    assert "InReview → Applying on /approve by carol" in result.stdout


async def test_watch_as_json_prints_one_record_per_line_from_watching_to_stopped(
    autopilot, temporal_env, tickets
):
    handle = await in_review(tickets)

    watching = asyncio.create_task(
        autopilot("watch", handle.id, "--interval", "0.2", "-o", "json", env=temporal_env)
    )
    await command(handle, "approve", by="carol")
    result = await watching
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["kind"] == "watching" and records[0]["workflow"] == handle.id
    steps = [(r["source"], r["target"], r["by"]) for r in records if r["kind"] == "step"]
    assert ("InReview", "Applying", "carol") in steps
    assert records[-1]["kind"] == "stopped"
    assert records[-1]["state"] == "Done" and records[-1]["outcome"] == "succeeded"
    assert records[-1]["ui_url"].endswith(handle.id.replace("/", "%2F"))
