"""A canary rolled back in a GitOps cluster writes the rollback into git, and Flux applies it.

Real: the API server, Prometheus, Temporal, the canary workflow and workers, git, Flux's
controllers applying the configuration repository. Fake: GitHub's REST API over that real
repository (``devcluster/github_fake``), every answer checked against GitHub's description.
Simulated: pods and traffic (the faulty revision fails half its requests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.github_fake.server import FakeGitHub
from models.revisions import pod_template_revision
from tests.canary.cluster import ERROR_RATE, app_deployment, deployment
from tests.canary.e2e import Rollouts
from tests.canary.histories import record_if_asked
from tests.canary.test_canary_e2e import V1, V2, canary_spec, deployed
from tests.gitops.contract import assert_all_valid
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.flux]

TOKEN = "ghp_fake_token_for_canary_tests_012345"
PATH = "clusters/dev"


def in_git(namespace: str, image: str, annotations: dict[str, str]) -> str:
    """The Deployment as the team keeps it in git: no replicas (runtime state)."""
    manifest = app_deployment("podinfo", image, template_annotations=annotations)
    manifest["metadata"]["namespace"] = namespace
    del manifest["spec"]["replicas"]
    return yaml.safe_dump(manifest, sort_keys=False)


def image_of(found: dict[str, Any]) -> str:
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeGitHub(tmp_path / "github", token=TOKEN) as fake:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        monkeypatch.setenv("AUTOPILOT_GITOPS_API_URL", fake.api_url)
        monkeypatch.setenv("AUTOPILOT_GITOPS_REPOSITORY", fake.repository)
        monkeypatch.setenv("AUTOPILOT_GITOPS_PATH", PATH)
        monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_FILE", str(token_file))
        yield fake
        exchanges, deliveries = list(fake.exchanges), list(fake.deliveries)
    assert_all_valid(exchanges, deliveries)


async def test_a_rolled_back_revision_is_set_back_to_the_stable_image_in_git_and_flux_applies_it(
    rollouts: Rollouts, kube_api: Any, namespace: str, github: FakeGitHub, flux_apply: Any
) -> None:
    spec = canary_spec(threshold=2)
    await deployed(rollouts, kube_api, namespace, spec)  # V1 runs, on -primary too
    stable = pod_template_revision(deployment(kube_api, namespace, "podinfo"))

    # CI merges the faulty V2 into git; Flux applies it; the canary rolls it out and back.
    file = f"{PATH}/{namespace}/deployment-podinfo.yaml"
    faulty = github.seed({file: in_git(namespace, V2, {ERROR_RATE: "0.5"})}, "podinfo 6.5.1")
    sync = flux_apply(github.clone_url, path=f"./{PATH}")
    await sync.applied(faulty)
    assert image_of(deployment(kube_api, namespace, "podinfo")) == V2
    rejected = pod_template_revision(deployment(kube_api, namespace, "podinfo"))
    assert rejected != stable
    handle = await rollouts.start(namespace, "podinfo", spec)
    failed = await rollouts.wait_for(handle, "Failed")
    assert failed.data["outcome"] == "rolled back"

    # The rollback is written back: one pull request setting the image to the stable one.
    async def opened() -> list[Any]:
        return github.pulls()

    [pull] = await eventually(opened, lambda pulls: len(pulls) == 1, what="the rollback PR")
    in_branch = yaml.safe_load(github.file_at(pull.head, file) or "")
    assert image_of(in_branch) == V1
    said = f"pull request #{pull.number} sets the images in git back"
    await eventually(
        lambda: rollouts.status(handle),
        lambda status: said in status.data["message"],
        what="the rollback's pull request in the status",
    )
    await record_if_asked(handle, "canary_rolled_back_recorded_in_git")

    # Merged, Flux applies it: the target runs the stable image again, and stays so.
    merged = github.merge(pull.number, by="release-manager")
    await sync.applied(merged)
    target = deployment(kube_api, namespace, "podinfo")
    assert image_of(target) == V1
    assert pod_template_revision(target) != rejected
    sync.nudge()
    assert image_of(deployment(kube_api, namespace, "podinfo")) == V1
