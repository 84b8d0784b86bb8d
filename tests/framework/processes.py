"""The real worker process and the CLI, run as a user runs them, for end-to-end tests.

``worker_main.py`` runs in a subprocess with the operator modules given, its watchers scoped
to the test's namespace (no leader election, the checkpoint in that namespace), and the
``autopilot`` CLI runs as ``python -m cli``; both read the same environment a user sets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client

from devcluster.crds import install_autopilot_crds
from models.operator import OperatorStatus

ROOT = Path(__file__).resolve().parents[2]
#: The generic webhook's secret in these tests.
SECRET = "framework-test-secret"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(kubeconfig: Path, modules: str, **extra: str) -> dict[str, str]:
    """This process's environment without our settings, plus the cluster and the modules."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    env.update(
        KUBECONFIG=str(kubeconfig),
        AUTOPILOT_OPERATOR_MODULES=modules,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@dataclass
class WorkerProcess:
    """The worker process, its task queue, its webhook port and its log."""

    process: subprocess.Popen[str]
    queue: str
    port: int
    log: Path

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def worker_process(
    *,
    modules: str,
    kubeconfig: Path,
    temporal_address: str,
    prometheus_url: str,
    namespace: str,
    log: Path,
    extra_env: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """``worker_main.py`` with ``modules``, its watchers on ``namespace``; stopped by SIGTERM.

    ``extra_env`` adds to the environment and overrides these defaults (e.g. leader election).
    """
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = {
        "AUTOPILOT_WATCH_NAMESPACES": json.dumps([namespace]),
        "AUTOPILOT_WATCH_STATE_NAMESPACE": namespace,
        "AUTOPILOT_WATCH_LEADER_ELECTION": "false",
        "AUTOPILOT_WATCH_PROMETHEUS_URL": prometheus_url,
        "AUTOPILOT_WEBHOOK_PORT": str(port),
        "AUTOPILOT_WEBHOOK_EVENTS_SECRET": SECRET,
    }
    env = environment(kubeconfig, modules, **{**settings, **(extra_env or {})})
    argv = [sys.executable, "worker_main.py", "--address", temporal_address]
    argv += ["--task-queue", queue, "--metrics-port", "0"]
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        yield WorkerProcess(process, queue, port, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def worker_fixture(modules: str, **extra_env: str) -> Any:
    """A ``worker`` fixture: ``worker_main.py`` with ``modules``, watching the test's namespace.

    Use it as ``worker = worker_fixture("my.operator.module")`` in a test module; keyword
    arguments are more environment variables for the worker.
    """

    @pytest.fixture
    def worker(
        kube_api: client.ApiClient,
        kubeconfig_path: Path,
        prometheus_url: str,
        temporal_address: str,
        namespace: str,
        tmp_path: Path,
    ) -> Iterator[WorkerProcess]:
        install_autopilot_crds(kube_api)  # the canary's watcher, which every worker runs
        with worker_process(
            modules=modules,
            kubeconfig=kubeconfig_path,
            temporal_address=temporal_address,
            prometheus_url=prometheus_url,
            namespace=namespace,
            log=tmp_path / "worker.log",
            extra_env=extra_env,
        ) as running:
            yield running

    return worker


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to the worker's webhook server; the status (0 while it is not listening)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ConnectionError):
        return 0


def cli(
    kubeconfig: Path, temporal_address: str, modules: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``autopilot ARGS --address ...`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, "--address", temporal_address],
        cwd=ROOT,
        env=environment(kubeconfig, modules),
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_app(
    api: client.ApiClient, namespace: str, name: str, **service_annotations: str
) -> None:
    """A Deployment, its Service and a VirtualService, so the simulator sends it traffic."""
    labels = {"app": name}
    deployment: Any = {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/web:1"}]},
            },
        },
    }
    service: Any = {
        "metadata": {"name": name, "annotations": service_annotations},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80}]},
    }
    route: Any = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name}, "weight": 100}]}],
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    client.CoreV1Api(api).create_namespaced_service(namespace, service)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", route
    )


async def status_of(temporal: Client, workflow_id: str) -> OperatorStatus | None:
    """The workflow's status (its result once completed), or None when there is none yet."""
    handle = temporal.get_workflow_handle(workflow_id, result_type=OperatorStatus)
    try:
        description = await handle.describe()
        if description.status is not None and description.status.name == "COMPLETED":
            return await handle.result()
        status: OperatorStatus = await handle.query("status", result_type=OperatorStatus)
        return status
    except Exception:
        return None
