"""``kubectl autopilot``: the CLI as a kubectl plugin, run by the real kubectl.

kubectl finds ``kubectl-autopilot`` on the PATH and passes the arguments after the plugin's
name unchanged; the plugin honours kubectl's ``--context``, ``--kubeconfig`` and ``-n``
wherever they are typed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.plugin import FlagWithoutValue, split
from tests.canary.cluster import app_deployment, create_app
from tests.canary.conftest import canary_env, rollouts  # noqa: F401 - fixtures used here
from tests.cli.test_cli_canary import V1, closed_port, manifest, write
from tests.temporal_env import executable

BIN = str(Path(sys.executable).parent)


async def kubectl(*args: str, env: dict[str, str | None]) -> tuple[int, str, str]:
    """Run the real kubectl (the plugin next to this Python on its PATH): code, out, err."""
    merged = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = await asyncio.create_subprocess_exec(
        executable("kubectl"),
        *args,
        env={k: v for k, v in merged.items() if v is not None},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- kubectl's flags, taken out of the arguments -------------------------------------------


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        (["status", "-n", "shop", "web"], ["status", "-n", "shop", "web"]),
        (["-n", "shop", "status", "web"], ["status", "web", "--namespace", "shop"]),
        (["--namespace=shop", "watch", "web"], ["watch", "web", "--namespace", "shop"]),
        (["-nshop", "canary", "start", "web"], ["canary", "start", "web", "--namespace", "shop"]),
        (["-n", "shop", "worker", "--", "-x"], ["worker", "--namespace", "shop", "--", "-x"]),
        (["status", "web", "--context", "prod", "-o", "json"], ["status", "web", "-o", "json"]),
        (["worker", "--", "--context", "x"], ["worker", "--", "--context", "x"]),
    ],
)
def test_kubectl_flags_are_taken_out_or_moved_after_the_command(typed, args):
    assert split(typed).args == args


def test_context_and_kubeconfig_become_the_kubernetes_settings():
    found = split(["--kubeconfig", "/k/config", "list", "--context=prod"])
    assert found.args == ["list"]
    assert found.settings == {
        "AUTOPILOT_KUBECONFIG": "/k/config",
        "AUTOPILOT_KUBE_CONTEXT": "prod",
    }


def test_a_kubectl_flag_without_its_value_is_refused():
    with pytest.raises(FlagWithoutValue, match="--context"):
        split(["status", "web", "--context"])


# -- the real kubectl ----------------------------------------------------------------------


async def test_kubectl_plugin_list_shows_autopilot(isolated_state):
    code, out, err = await kubectl("plugin", "list", env=isolated_state)
    assert code == 0, err
    assert str(Path(BIN) / "kubectl-autopilot") in out, out + err
    help_code, help_out, _ = await kubectl("autopilot", "--help", env=isolated_state)
    assert help_code == 0
    assert "Usage: kubectl autopilot" in help_out


def two_contexts(admin: Path, namespace: str, path: Path) -> Path:
    """A kubeconfig whose current context is unreachable; context ``dev`` is the cluster's,
    in ``namespace``."""
    config: dict[str, Any] = yaml.safe_load(admin.read_text())
    cluster = config["contexts"][0]["context"]
    config["clusters"].append(
        {"name": "gone", "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}
    )
    config["contexts"] = [
        {"name": "dev", "context": {**cluster, "namespace": namespace}},
        {"name": "gone", "context": {**cluster, "cluster": "gone"}},
    ]
    config["current-context"] = "gone"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.cluster
@pytest.mark.temporal
async def test_kubectl_autopilot_starts_and_shows_a_canary_in_the_context_and_namespace_given(
    isolated_state,
    rollouts,  # noqa: F811 - the fixture
    kubeconfig_path,
    temporal_address,
    kube_api,
    namespace,
    tmp_path,
):
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    document = manifest(namespace)
    del document["metadata"]["namespace"]  # the context's namespace is the default
    spec = write(tmp_path, document)
    config = two_contexts(kubeconfig_path, namespace, tmp_path / "two-contexts")
    env = {
        **isolated_state,
        "TEMPORAL_ADDRESS": temporal_address,
        "AUTOPILOT_TEMPORAL_TASK_QUEUE": rollouts.task_queue,
    }
    start = ["autopilot", "canary", "start", "podinfo", "-f", str(spec)]

    code, _, err = await kubectl(*start, "--kubeconfig", str(config), env=env)
    assert code == 6, err  # the file's current context is unreachable
    assert "cannot reach Kubernetes" in err

    code, out, err = await kubectl(*start, "--kubeconfig", str(config), "--context", "dev", env=env)
    assert code == 0, out + err
    assert f"started canary/{namespace}/podinfo" in out

    code, out, err = await kubectl(
        "autopilot", f"--kubeconfig={config}", "--context=dev", "watch", "podinfo", env=env
    )
    assert code == 0, out + err  # the first run creates the primary and succeeds

    code, out, err = await kubectl("autopilot", "status", "-n", namespace, "podinfo", env=env)
    assert code == 0, out + err
    assert f"canary/{namespace}/podinfo" in out and "Succeeded" in out

    code, out, err = await kubectl(
        "autopilot", "-n", namespace, "status", "podinfo", "-o", "json", env=env
    )
    assert code == 0, out + err
    assert json.loads(out)["state"] == "Succeeded"
