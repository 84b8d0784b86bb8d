"""Finding Temporal: flags, environment, the dev cluster's state, the embedded server file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import pytest

from cli.connection import resolve


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_temporal_exits_5_with_the_command_that_starts_one(autopilot):
    port = closed_port()
    result = await autopilot("status", "canary/shop/web", "--address", f"127.0.0.1:{port}")
    assert result.exit_code == 5
    assert f"cannot reach Temporal at 127.0.0.1:{port} (from --address)" in result.stderr
    assert "autopilot dev up" in result.stderr and "autopilot worker" in result.stderr
    assert "Traceback" not in result.output


async def test_no_temporal_configured_or_running_exits_5(autopilot):
    result = await autopilot("list")
    assert result.exit_code == 5
    assert "no Temporal server configured" in result.stderr
    assert "autopilot dev up" in result.stderr


async def test_the_embedded_servers_file_is_used_when_nothing_else_is_configured(
    autopilot, isolated_state, tmp_path
):
    state = tmp_path / "state" / "autopilot"
    state.mkdir(parents=True)
    port = closed_port()
    (state / "embedded-temporal.json").write_text(
        json.dumps({"address": f"127.0.0.1:{port}", "ui_url": "http://127.0.0.1:18233"})
    )
    result = await autopilot("list")
    assert result.exit_code == 5
    assert f"127.0.0.1:{port} (from the embedded server recorded in" in result.stderr


def test_the_address_order_is_flag_then_autopilot_env_then_temporal_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AUTOPILOT_DEV_STATE", str(tmp_path / "dev"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "generic:7233")
    monkeypatch.delenv("AUTOPILOT_TEMPORAL_UI_URL", raising=False)
    monkeypatch.delenv("AUTOPILOT_TEMPORAL_ADDRESS", raising=False)
    assert resolve().address == "generic:7233"
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_ADDRESS", "ours:7233")
    assert resolve().address == "ours:7233"
    assert resolve("flag:7233").address == "flag:7233"


def test_the_ui_link_is_url_encoded_and_comes_with_the_server(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AUTOPILOT_DEV_STATE", str(tmp_path / "dev"))
    monkeypatch.delenv("AUTOPILOT_TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("AUTOPILOT_TEMPORAL_UI_URL", raising=False)
    (tmp_path / "embedded-temporal.json").write_text(
        json.dumps({"address": "127.0.0.1:17233", "ui_url": "http://127.0.0.1:18233"})
    )
    endpoint = resolve()
    assert endpoint.workflow_url("canary/shop/web") == (
        "http://127.0.0.1:18233/namespaces/default/workflows/canary%2Fshop%2Fweb"
    )
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_UI_URL", "https://temporal.example.com")
    assert resolve().ui_url == "https://temporal.example.com"


@pytest.mark.cluster
def test_the_running_dev_cluster_is_found_from_its_state(dev_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPILOT_DEV_STATE", str(dev_cluster.state_dir))
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_STATE_DIR", str(tmp_path))
    for name in ("AUTOPILOT_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS", "AUTOPILOT_TEMPORAL_UI_URL"):
        monkeypatch.delenv(name, raising=False)
    endpoint = resolve()
    assert endpoint.address == dev_cluster.env()["TEMPORAL_ADDRESS"]
    assert endpoint.ui_url == f"http://127.0.0.1:{dev_cluster.ports['temporal_ui']}"
    assert "dev cluster" in endpoint.source


async def test_an_embedded_servers_file_left_by_a_dead_worker_is_ignored(autopilot, tmp_path):
    state = tmp_path / "state" / "autopilot"
    state.mkdir(parents=True)
    (state / "embedded-temporal.json").write_text(
        json.dumps({"address": "127.0.0.1:17233", "ui_url": "", "pid": 2**22 + 1})
    )
    result = await autopilot("list")
    assert result.exit_code == 5
    assert "no Temporal server configured" in result.stderr


@pytest.mark.temporal
async def test_the_cli_finds_the_embedded_server_autopilot_worker_started(autopilot, tmp_path):
    state = tmp_path / "state" / "autopilot"
    port, ui_port = closed_port(), closed_port()
    env = {
        **os.environ,
        "AUTOPILOT_TEMPORAL_STATE_DIR": str(state),
        "AUTOPILOT_EMBEDDED_PORT": str(port),
        "AUTOPILOT_EMBEDDED_UI_PORT": str(ui_port),
        "AUTOPILOT_METRICS_PORT": "0",
    }
    for name in ("AUTOPILOT_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS"):
        env.pop(name, None)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "worker", "--no-watchers",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert worker.stdout is not None
    try:
        seen: list[str] = []
        while not any("Temporal UI" in line for line in seen):
            line = await asyncio.wait_for(worker.stdout.readline(), timeout=120)
            assert line, "the worker exited: " + "".join(seen)
            seen.append(line.decode())

        listed = await autopilot("list", "-o", "json")
        assert listed.exit_code == 0, listed.output
        assert listed.stdout.strip() == "[]"
        unknown = await autopilot("status", "canary/shop/web")
        assert unknown.exit_code == 4
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
