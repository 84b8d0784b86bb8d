"""The GitHub token read from a Kubernetes Secret on the real local API server."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.gitops.pulls import open_pull_request
from devcluster.github_fake.server import FakeGitHub
from models.gitops import PullRequestChange

pytestmark = pytest.mark.cluster

CHANGE = PullRequestChange.model_validate(
    {
        "workflow_id": "canary/shop/checkout",
        "step_key": "run1:7:gitops.open_pull_request",
        "title": "Roll shop/checkout back to 1.0",
        "why": "v2 failed its analysis.",
        "changes": [
            {
                "op": "set-image",
                "namespace": "shop",
                "name": "checkout",
                "container": "checkout",
                "image": "shop/checkout:0.9",
            }
        ],
    }
)


@pytest.fixture
def secret_settings(
    fake_github: FakeGitHub,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="github"), string_data={"token": fake_github.token}
        ),
    )
    monkeypatch.setenv("AUTOPILOT_KUBECONFIG", str(kubeconfig_path))
    monkeypatch.setenv("AUTOPILOT_GITOPS_API_URL", fake_github.api_url)
    monkeypatch.setenv("AUTOPILOT_GITOPS_REPOSITORY", fake_github.repository)
    monkeypatch.setenv("AUTOPILOT_GITOPS_PATH", "clusters/dev")
    monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_SECRET", "github")
    monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_SECRET_NAMESPACE", namespace)
    return namespace


async def test_the_token_is_read_from_the_secret_at_each_use(
    fake_github: FakeGitHub, secret_settings: str
) -> None:
    opened = await ActivityEnvironment().run(open_pull_request, CHANGE)
    assert opened.outcome == "opened" and len(fake_github.pulls()) == 1


async def test_a_secret_without_the_key_is_named_in_the_error(
    fake_github: FakeGitHub, secret_settings: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_SECRET_KEY", "pat")
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(open_pull_request, CHANGE)
    assert failed.value.non_retryable
    assert f"Secret {secret_settings}/github has no key 'pat'" in failed.value.message
    assert fake_github.token not in failed.value.message
