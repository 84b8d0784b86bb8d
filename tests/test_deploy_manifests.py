"""The manifests under deploy/ are accepted by a real API server and grant what we use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy" / "kubernetes"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
SA = "system:serviceaccount:autopilot-system:autopilot"

pytestmark = pytest.mark.cluster


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
        timeout=60,
    )


@pytest.fixture(scope="module")
def installed(kubeconfig_path: Path) -> Path:
    for name in ("namespace.yaml", "rbac.yaml", "autopilot.yaml"):
        applied = kubectl(kubeconfig_path, "apply", "--server-side", "-f", str(DEPLOY / name))
        assert applied.returncode == 0, applied.stderr
    return kubeconfig_path


def test_the_worker_and_watcher_deployments_are_accepted_by_the_api_server(installed: Path):
    listed = kubectl(installed, "get", "deployments", "-n", "autopilot-system", "-o", "name")
    assert listed.stdout.split() == [
        "deployment.apps/autopilot-watchers",
        "deployment.apps/autopilot-worker",
    ]


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("patch", "virtualservices.networking.istio.io"),
        ("create", "destinationrules.networking.istio.io"),
        ("delete", "authorizationpolicies.security.istio.io"),
        ("patch", "deployments.apps"),
        ("watch", "canaries.autopilot.dev"),
        ("patch", "canaries.autopilot.dev"),
        ("create", "configmaps"),
        ("patch", "canaries.autopilot.dev/status"),
        ("update", "leases.coordination.k8s.io"),
    ],
)
def test_the_autopilot_service_account_may_do_what_operators_need(
    installed: Path, verb: str, resource: str
):
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = kubectl(installed, "auth", "can-i", verb, resource, *extra, "--as", SA, "-A")
    assert answer.stdout.strip() == "yes", (verb, resource, answer.stderr)


def test_the_autopilot_service_account_may_not_read_secrets(installed: Path):
    answer = kubectl(installed, "auth", "can-i", "get", "secrets", "--as", SA, "-A")
    assert answer.stdout.strip() == "no"
