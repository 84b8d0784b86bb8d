"""The quarantine in mode direct-then-record, end to end with real Flux and the FAKE GitHub.

Real: kube-apiserver with Istio's CRDs, Temporal, the quarantine workflow and its workers
(in this process), Autopilot's webhook server, git (a bare repository served by
``git http-backend``), and Flux's source- and kustomize-controller applying what is merged.
Fake: GitHub's REST API and its webhooks (``devcluster/github_fake``); every answer it gave
and every webhook it sent is checked against GitHub's official descriptions at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from temporalio.client import Client, WorkflowHandle

from activities.quarantine import ACTIVITIES as QUARANTINE_ACTIVITIES
from activities.quarantine_git import ACTIVITIES as GIT_ACTIVITIES
from devcluster.cluster import DevCluster
from devcluster.github_fake.server import FakeGitHub
from models.operator import (
    COMMAND_UPDATE,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    OperatorStatus,
    workflow_id,
)
from service.settings import WebhookSettings
from service.temporal import connect
from tests.fixtures.flux import KUSTOMIZE_API, SOURCE_API, git_repository, kustomization
from tests.gitops.contract import assert_all_valid
from tests.quarantine.alerts import alert, deliver
from tests.quarantine.cluster import create_app, deployment, policies
from tests.waiting import eventually
from watchers.delivery import Delivery
from watchers.webhooks import WebhookServer
from worker_main import make_worker
from workflows.quarantine import QuarantineWorkflow

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.flux]

TOKEN = "ghp_fake_token_for_quarantine_tests_0123"
SECRET = "github-webhook-secret-for-tests-0123456789"
PATH = "clusters/dev"
PULLS = "/repos/{owner}/{repo}/pulls"


@dataclass
class Setup:
    """Everything one test drives: Temporal, its worker's queue, the fake and the cluster."""

    temporal: Client
    task_queue: str
    github: FakeGitHub
    api: client.ApiClient
    namespace: str

    def handle(self, name: str) -> WorkflowHandle[Any, OperatorStatus]:
        return self.temporal.get_workflow_handle(
            workflow_id("quarantine", self.namespace, name), result_type=OperatorStatus
        )

    async def status(self, name: str) -> OperatorStatus:
        return await self.handle(name).query(STATUS_QUERY, result_type=OperatorStatus)

    async def until(self, name: str, what: Any, description: str) -> OperatorStatus:
        async def read() -> OperatorStatus:
            return await self.status(name)

        found: OperatorStatus = await eventually(read, what, attempts=600, what=description)
        return found

    async def release(self, name: str) -> CommandReceipt:
        request = CommandRequest(command="release", by="sec-oncall", reason="false positive")
        receipt: CommandReceipt = await self.handle(name).execute_update(
            COMMAND_UPDATE, request, result_type=CommandReceipt
        )
        return receipt

    def policy_file(self, name: str) -> str:
        return f"{PATH}/{self.namespace}/authorizationpolicy-{name}-quarantine.yaml"

    def policy_names(self) -> list[str]:
        return [p["metadata"]["name"] for p in policies(self.api, self.namespace)]

    def applied_revision(self) -> str:
        found: Any = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            *KUSTOMIZE_API, self.namespace, "kustomizations", "config"
        )
        return str((found.get("status") or {}).get("lastAppliedRevision", ""))

    async def flux_applied(self, sha: str) -> None:
        await eventually(
            self.applied_revision,
            lambda revision: revision.endswith(sha),
            attempts=600,
            what=f"Flux applying {sha[:12]}",
        )


@pytest.fixture
def gitops_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Point the GitOps workers at a fake; returns a function taking the poll interval."""

    def configure(github: FakeGitHub, poll_interval_s: float) -> None:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        monkeypatch.setenv("AUTOPILOT_GITOPS_API_URL", github.api_url)
        monkeypatch.setenv("AUTOPILOT_GITOPS_REPOSITORY", github.repository)
        monkeypatch.setenv("AUTOPILOT_GITOPS_PATH", PATH)
        monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("AUTOPILOT_GITOPS_POLL_INTERVAL_S", str(poll_interval_s))
        monkeypatch.setenv("AUTOPILOT_GITOPS_APPLY_TIMEOUT_S", "300")

    return configure


@pytest.fixture
async def temporal(temporal_address: str, quarantine_kube: None) -> AsyncIterator[Client]:
    yield await connect(temporal_address)


async def _setup(
    temporal: Client,
    tmp_path: Path,
    kube_api: client.ApiClient,
    namespace: str,
    gitops_env: Any,
    *,
    webhooks: bool,
    poll_interval_s: float,
) -> AsyncIterator[Setup]:
    task_queue = f"quarantine-git-{uuid.uuid4().hex[:8]}"
    settings = WebhookSettings(host="127.0.0.1", port=0, github_secret=SECRET)
    delivery = Delivery(temporal, task_queue=task_queue)
    async with WebhookServer(settings, delivery) as server:
        github = FakeGitHub(
            tmp_path / "github",
            token=TOKEN,
            webhook_url=f"{server.url}/v1/github",
            webhook_secret=SECRET,
            send_webhooks=webhooks,
        )
        with github:
            seed = {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"name": "seed", "namespace": namespace},
            }
            github.seed(
                {f"{PATH}/{namespace}/configmap-seed.yaml": yaml.safe_dump(seed, sort_keys=False)}
            )
            gitops_env(github, poll_interval_s)
            objects = client.CustomObjectsApi(kube_api)
            objects.create_namespaced_custom_object(
                *SOURCE_API,
                namespace,
                "gitrepositories",
                git_repository("config", github.clone_url),
            )
            objects.create_namespaced_custom_object(
                *KUSTOMIZE_API,
                namespace,
                "kustomizations",
                kustomization("config", "config", namespace, path=f"./{PATH}"),
            )
            activities = [*QUARANTINE_ACTIVITIES, *GIT_ACTIVITIES]
            async with make_worker(temporal, task_queue, [QuarantineWorkflow], activities):
                setup = Setup(temporal, task_queue, github, kube_api, namespace)
                await setup.flux_applied(github.repo.resolve("main") or "")
                yield setup
                for name in ("web",):
                    handle = setup.handle(name)
                    description = await handle.describe()
                    if description.status is not None and description.status.name == "RUNNING":
                        await handle.terminate("test over")
            for plural, api in (("kustomizations", KUSTOMIZE_API), ("gitrepositories", SOURCE_API)):
                objects.delete_namespaced_custom_object(*api, namespace, plural, "config")
            exchanges, deliveries = list(github.exchanges), list(github.deliveries)
    assert_all_valid(exchanges, deliveries)


@pytest.fixture
async def with_webhooks(
    flux_cluster: DevCluster,
    temporal: Client,
    tmp_path: Path,
    kube_api: client.ApiClient,
    namespace: str,
    gitops_env: Any,
) -> AsyncIterator[Setup]:
    """Webhooks delivered; the poll so slow (an hour) that only a webhook can move the run."""
    del flux_cluster
    async for setup in _setup(
        temporal,
        tmp_path,
        kube_api,
        namespace,
        gitops_env,
        webhooks=True,
        poll_interval_s=3600,
    ):
        yield setup


@pytest.fixture
async def webhooks_lost(
    flux_cluster: DevCluster,
    temporal: Client,
    tmp_path: Path,
    kube_api: client.ApiClient,
    namespace: str,
    gitops_env: Any,
) -> AsyncIterator[Setup]:
    """Every webhook lost; the poll reads the pull request every second."""
    del flux_cluster
    async for setup in _setup(
        temporal,
        tmp_path,
        kube_api,
        namespace,
        gitops_env,
        webhooks=False,
        poll_interval_s=1,
    ):
        yield setup


async def isolate(setup: Setup, name: str = "web") -> OperatorStatus:
    """An alert for a live workload; the status once the record pull request is known."""
    create_app(setup.api, setup.namespace, name)
    await deliver(setup.temporal, setup.task_queue, alert(setup.namespace, name))
    return await setup.until(
        name,
        lambda s: s.state == "Isolated" and s.data["git"] and s.data["git"]["record_pr"],
        "the isolation and its record pull request",
    )


async def isolated_and_recorded(setup: Setup, name: str = "web") -> OperatorStatus:
    """Isolated, its record pull request merged and applied by Flux: git holds the policy."""
    isolated = await isolate(setup, name)
    merge_sha = setup.github.merge(isolated.data["git"]["record_pr"], by="ada")
    await setup.flux_applied(merge_sha)
    return isolated


async def in_review_polled(setup: Setup, name: str = "web") -> OperatorStatus:
    """ReleaseInReview once its first read found the pull request open (so that a merge
    after it can only be seen by the webhook, the next read being an hour away)."""
    return await setup.until(
        name,
        lambda s: s.state == "ReleaseInReview" and s.data["git"]["polls"] >= 1,
        "the release pull request in review, read once",
    )


def autopilot_branches(github: FakeGitHub) -> list[str]:
    return [name for name in github.repo.branches() if name.startswith("autopilot/")]


async def test_direct_then_record_isolates_at_once_records_by_pull_request_and_releases_through_git(
    with_webhooks: Setup,
) -> None:
    setup = with_webhooks
    started = time.monotonic()
    isolated = await isolate(setup)
    record_opened_s = time.monotonic() - started

    # Isolated at once: the policy is in the cluster, and no pull request is merged yet.
    assert setup.policy_names() == ["web-quarantine"]
    [record] = setup.github.pulls()
    assert (record.number, record.state, record.merged) == (1, "open", False)
    recorded = setup.github.file_at(record.head, setup.policy_file("web"))
    assert recorded is not None and "action: DENY" in recorded
    before = policies(setup.api, setup.namespace)[0]

    # Merging the record changes nothing in the cluster: Flux applies what is already there.
    merge_sha = setup.github.merge(record.number, by="ada")
    await setup.until(
        "web", lambda s: s.data["git"]["record_state"] == "merged", "the record's merge"
    )
    await setup.flux_applied(merge_sha)
    after = policies(setup.api, setup.namespace)[0]
    assert after["spec"] == before["spec"] and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert isolated.state == "Isolated"

    # release opens a pull request removing the file; until it is merged, nothing moves.
    receipt = await setup.release("web")
    assert receipt.now == "Releasing"
    in_review = await in_review_polled(setup)
    release = setup.github.pull(in_review.data["git"]["release_pr"])
    assert setup.github.file_at(release.head, setup.policy_file("web")) is None
    assert setup.policy_names() == ["web-quarantine"]
    assert autopilot_branches(setup.github) == sorted([record.head, release.head])

    merged_at = time.monotonic()
    setup.github.merge(release.number, by="bob")
    result: OperatorStatus = await setup.handle("web").result()
    released_s = time.monotonic() - merged_at

    assert result.state == "Released"
    assert setup.policy_names() == []  # pruned by Flux, not deleted by Autopilot
    assert "autopilot.dev/quarantined" not in (
        deployment(setup.api, setup.namespace, "web")["metadata"].get("labels") or {}
    )
    notes = result.data["git"]["notes"]
    assert any("#2 merged by bob" in note for note in notes), "\n".join(notes)
    assert any("pruned web-quarantine" in note for note in notes), notes
    print(
        f"\nrecord PR open {record_opened_s:.1f}s after the alert; "
        f"merge → Released {released_s:.1f}s"
    )


async def test_with_the_webhook_lost_the_poll_finds_the_merge(webhooks_lost: Setup) -> None:
    setup = webhooks_lost
    await isolated_and_recorded(setup)
    await setup.release("web")
    in_review = await setup.until("web", lambda s: s.state == "ReleaseInReview", "review")

    merged_at = time.monotonic()
    setup.github.merge(in_review.data["git"]["release_pr"], by="bob")
    result: OperatorStatus = await setup.handle("web").result()
    released_s = time.monotonic() - merged_at

    assert result.state == "Released"
    assert setup.github.deliveries and not any(d.sent for d in setup.github.deliveries)
    assert any("(seen by polling)" in note for note in result.data["git"]["notes"])
    assert setup.policy_names() == []
    print(f"\nwebhook lost: merge → Released {released_s:.1f}s (poll every 1s)")


async def test_a_release_pull_request_closed_unmerged_keeps_the_workload_isolated(
    with_webhooks: Setup,
) -> None:
    setup = with_webhooks
    await isolated_and_recorded(setup)
    await setup.release("web")
    in_review = await in_review_polled(setup)

    setup.github.close(in_review.data["git"]["release_pr"], by="security-lead")
    current = await setup.until("web", lambda s: s.state == "Isolated", "back to Isolated")

    assert setup.policy_names() == ["web-quarantine"]
    assert current.data["git"]["notes"][-1].startswith(
        "release refused: pull request #2 was closed unmerged by security-lead"
    )
    assert "release" in current.accepted_commands


async def test_interrupted_pull_requests_end_with_one_branch_and_one_pull_request_each(
    with_webhooks: Setup,
) -> None:
    setup = with_webhooks
    setup.github.fail_next("POST", PULLS)  # the record's branch is pushed, then the call fails
    await isolated_and_recorded(setup)
    assert len(setup.github.pulls()) == 1 and len(autopilot_branches(setup.github)) == 1

    setup.github.lose_next_answer("POST", PULLS)  # the release PR opens; its answer is lost
    await setup.release("web")
    await setup.until("web", lambda s: s.state == "ReleaseInReview", "review")

    assert len(setup.github.pulls()) == 2 and len(autopilot_branches(setup.github)) == 2
