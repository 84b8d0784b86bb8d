"""`autopilot canary start -f`: an oversize spec is refused at once, and a running canary
is never given another spec without a word.

The manifests of issue 9 are generated here: one of 150,000 metrics and one of 15,000
(which Temporal used to refuse after half a minute, naming neither file nor field). Both
are refused before Temporal or Kubernetes is asked anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.contrib.pydantic import pydantic_data_converter

from cli import canary as canary_cli
from cli.errors import CliError, Exit
from models.canary import NewRevision
from models.operator import EventEnvelope, OperatorInput, Target
from tests.canary.cluster import app_deployment, create_app, deployment
from tests.canary.conftest import canary_env, rollouts  # noqa: F401 - fixtures used here
from tests.cli.test_cli_canary import V1, V2, V3, cluster_cli, manifest  # noqa: F401 - fixture


def huge_manifest(tmp_path: Path, metrics: int) -> Path:
    """A Canary with ``metrics`` distinct, valid metrics, in JSON (which is YAML too)."""
    document = manifest("shop")
    document["spec"]["analysis"]["metrics"] = [
        {"name": f"metric-{i}", "thresholdRange": {"min": 99}, "query": f"up{{job='j{i}'}}"}
        for i in range(metrics)
    ]
    path = tmp_path / f"canary-{metrics}.json"
    path.write_text(json.dumps(document))
    return path


def write_as(tmp_path: Path, name: str, document: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# -- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metrics", [150_000, 15_000])
async def test_a_manifest_of_thousands_of_metrics_is_refused_naming_the_limit_and_exits_2(
    autopilot, tmp_path, metrics
):
    path = huge_manifest(tmp_path, metrics)

    result = await autopilot("canary", "start", "podinfo", "-n", "shop", "-f", str(path))

    assert result.exit_code == 2, result.output
    assert f"invalid canary spec in {path}:" in result.stderr
    assert "; a canary manifest may be at most 256 KiB" in result.stderr
    assert "Temporal" not in result.stderr and "\x1b[" not in result.output


async def test_more_metrics_than_the_bound_are_refused_naming_the_field_and_exit_2(
    autopilot, tmp_path
):
    path = huge_manifest(tmp_path, 51)

    result = await autopilot("canary", "start", "podinfo", "-n", "shop", "-f", str(path))

    assert result.exit_code == 2, result.output
    assert (
        "spec.analysis.metrics: List should have at most 50 items after validation, not 51"
        in result.stderr
    )


async def test_a_start_over_temporals_payload_limit_is_refused_naming_file_and_field(
    tmp_path, monkeypatch
):
    # No spec within the bounds comes near 2 MB, so the limit is lowered to show the check.
    monkeypatch.setattr(canary_cli, "TEMPORAL_PAYLOAD_LIMIT", 1024)
    spec = manifest("shop")["spec"]
    spec["service"]["trafficPolicy"] = {"note": "x" * 2000}
    start = OperatorInput(target=Target(namespace="shop", name="podinfo"), spec=spec)
    envelope = EventEnvelope(id="e", type=NewRevision.type_name())
    path = tmp_path / "canary.yaml"

    with pytest.raises(CliError) as refused:
        await canary_cli.refuse_oversize(pydantic_data_converter, start, envelope, path)

    assert refused.value.code == Exit.INVALID
    assert refused.value.message.startswith(f"{path}: spec: the workflow input would be 2.")
    assert refused.value.message.endswith("KiB; Temporal accepts at most 1 KiB")


# -- a running canary keeps its spec ----------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.temporal
async def test_a_running_canary_accepts_its_own_spec_and_refuses_another_naming_the_field(
    autopilot,
    cluster_cli,  # noqa: F811 - the fixture
    kube_api,
    namespace,
    tmp_path,
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    document = manifest(namespace, gates={"beforeStart": True})
    path = write_as(tmp_path, "canary.yaml", document)
    workflow = f"canary/{namespace}/podinfo"
    await autopilot("canary", "start", "podinfo", "-f", str(path), env=cluster_cli)
    assert (await autopilot("watch", workflow, env=cluster_cli)).exit_code == 0  # bootstrap
    start = ["canary", "start", "podinfo", "-n", namespace]
    await autopilot(*start, "--image", V2, env=cluster_cli)
    assert (await autopilot("watch", workflow, env=cluster_cli)).exit_code == 3  # the gate

    same = await autopilot(*start, "-f", str(path), env=cluster_cli)
    assert same.exit_code == 0, same.output
    assert "already rolls out revision" in same.stdout
    assert f"{path} has the spec it already runs with" in same.stdout

    document["spec"]["analysis"]["threshold"] = 5
    document["spec"]["analysis"]["interval"] = "3s"
    changed = write_as(tmp_path, "changed.yaml", document)
    refused = await autopilot(*start, "-f", str(changed), "--image", V3, env=cluster_cli)
    assert refused.exit_code == 1, refused.output
    assert f"{workflow} (state Waiting) runs with another spec than {changed}" in refused.stderr
    assert 'spec.analysis.interval: "2s" → "3s"' in refused.stderr
    assert "spec.analysis.threshold: 2 → 5" in refused.stderr
    assert f"'autopilot abort {workflow}', then run this again" in refused.stderr
    image = deployment(kube_api, namespace, "podinfo")["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == V2  # refused before anything changed

    status = json.loads((await autopilot("status", workflow, "-o", "json", env=cluster_cli)).stdout)
    assert status["state"] == "Waiting" and status["spec"]["analysis"]["threshold"] == 2

    # What the hint says: abort, start again with the file, retry the aborted revision.
    assert (await autopilot("abort", workflow, env=cluster_cli)).exit_code == 0
    restarted = await autopilot(*start, "-f", str(changed), env=cluster_cli)
    assert restarted.exit_code == 0, restarted.output
    assert f"started {workflow}" in restarted.stdout
    assert (await autopilot("watch", workflow, env=cluster_cli)).exit_code == 1  # rejected
    assert (await autopilot("retry", workflow, env=cluster_cli)).exit_code == 0
    assert (await autopilot("watch", workflow, env=cluster_cli)).exit_code == 3  # the gate
    status = json.loads((await autopilot("status", workflow, "-o", "json", env=cluster_cli)).stdout)
    assert status["state"] == "Waiting" and status["spec"]["analysis"]["threshold"] == 5
    assert (await autopilot("abort", workflow, env=cluster_cli)).exit_code == 0


# -- nothing but the CLI's own lines on the terminal ----------------------------------------

#: Starts a workflow with a payload over Temporal's warning limit (512 KiB, under the 2 MB
#: refusal): the SDK core logs a warning about it, in colour, unless told not to.
NEAR_THE_LIMIT = """
import asyncio, sys, uuid
from temporalio.client import Client
from cli.connection import open_client, resolve

async def main() -> None:
    endpoint = resolve()
    if sys.argv[1] == "cli":
        client = await open_client(endpoint)
    else:
        client = await Client.connect(endpoint.address)
    handle = await client.start_workflow(
        "nothing", "x" * 600_000, id=f"near-the-limit-{uuid.uuid4()}", task_queue="nobody"
    )
    await handle.terminate("done")

asyncio.run(main())
sys.stdout.flush(); sys.stderr.flush()
import os; os._exit(0)  # skip the teardown the SDK core can crash (sdk-python#300)
"""


@pytest.mark.temporal
def test_the_clis_temporal_client_prints_no_log_line_of_the_sdk_core(temporal_env):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, **temporal_env, "PYTHONPATH": str(root)}

    def terminal(client: str) -> str:
        """What the script wrote to the terminal (the core writes to stdout)."""
        done = subprocess.run(
            [sys.executable, "-c", NEAR_THE_LIMIT, client],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=60,
            check=True,
        )
        return done.stdout + done.stderr

    assert "TMPRL1103" in terminal("default")  # what a default client prints
    assert terminal("cli") == ""
