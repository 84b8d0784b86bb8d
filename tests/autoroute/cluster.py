"""What the autoroute tests create and read on the local cluster, and the worker they run.

Why a module: the end-to-end tests (direct mode, and GitOps mode with Flux) start the same
real worker process pointed at the same fake GitHub, and read the same VirtualService.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.github_fake.server import FakeGitHub, WebhookDelivery
from models.autoroute import ROUTE
from tests.framework.processes import WorkerProcess, worker_process
from tests.waiting import eventually
from watchers.webhooks import sign

TOKEN = "ghp_fake_token_for_autoroute_tests_012345"
SECRET = "github-webhook-secret-for-autoroute-0123456789"
VS_API = ("networking.istio.io", "v1")


def service_manifest(namespace: str, name: str, route: str, **annotations: str) -> dict[str, Any]:
    """An annotated Service, as an application repository holds it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {ROUTE: route, **annotations},
        },
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }


def create_backend(api: client.ApiClient, namespace: str, name: str) -> None:
    """The Deployment a Service selects (the simulator makes it ready)."""
    labels = {"app": name}
    body: Any = {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": f"shop/{name}:1"}]},
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body)


def create_service(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    """The Service in the cluster, as the application's own deploy would put it there."""
    namespace = manifest["metadata"]["namespace"]
    body: Any = manifest
    client.CoreV1Api(api).create_namespaced_service(namespace, body)


def route(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The VirtualService ``name`` (None when there is none)."""
    try:
        found: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            *VS_API, namespace, "virtualservices", name
        )
        return dict(found)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def routes(api: client.ApiClient, namespace: str) -> list[str]:
    """The names of every VirtualService in the namespace."""
    found: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        *VS_API, namespace, "virtualservices"
    )
    return sorted(item["metadata"]["name"] for item in found["items"])


def check_in(github: FakeGitHub, path: str, manifest: dict[str, Any] | None) -> str:
    """Commit a file on the default branch through the REST API, as a developer's push.

    The fake sends the ``push`` webhook for the commit. ``None`` removes the file.
    """
    from github import Auth, Github

    repo = Github(base_url=github.api_url, auth=Auth.Token(TOKEN), retry=None, lazy=True).get_repo(
        github.repository
    )
    if manifest is None:
        current = repo.get_contents(path, ref="main")
        assert not isinstance(current, list)
        result: Any = repo.delete_file(path, f"remove {path}", current.sha, branch="main")
    else:
        result = repo.create_file(path, f"add {path}", yaml.safe_dump(manifest), branch="main")
    return str(result["commit"].sha)


def redeliver(delivery: WebhookDelivery, url: str) -> int:
    """Send a recorded webhook again, with its delivery ID, as GitHub's Redeliver button."""
    body = json.dumps(delivery.payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.delivery_id,
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@contextlib.contextmanager
def autoroute_worker(
    *,
    github: FakeGitHub,
    kubeconfig: Path,
    temporal_address: str,
    prometheus_url: str,
    namespace: str,
    log: Path,
    **extra: str,
) -> Iterator[WorkerProcess]:
    """The real worker (operators, watchers, webhook server) reading the fake GitHub."""
    token_file = log.parent / "github-token"
    token_file.write_text(TOKEN)
    env = {
        "AUTOPILOT_WEBHOOK_GITHUB_SECRET": SECRET,
        "AUTOPILOT_GITOPS_API_URL": github.api_url,
        "AUTOPILOT_GITOPS_TOKEN_FILE": str(token_file),
        "AUTOPILOT_PROMETHEUS_URL": prometheus_url,
        **extra,
    }
    with worker_process(
        modules="workflows.autoroute",
        kubeconfig=kubeconfig,
        temporal_address=temporal_address,
        prometheus_url=prometheus_url,
        namespace=namespace,
        log=log,
        extra_env=env,
    ) as worker:
        github.webhook_url = f"http://127.0.0.1:{worker.port}/v1/github"
        github.webhook_secret = SECRET
        yield worker


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


async def webhooks_ready(worker: WorkerProcess) -> None:
    """Wait until the worker's webhook server answers, so no push webhook is lost."""
    await eventually(
        lambda: _healthy(worker.port),
        attempts=600,
        what=f"the worker's webhook server\n{worker.output()[-3000:]}",
    )
