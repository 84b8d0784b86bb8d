"""The GitOps workers open one pull request per step, whatever a worker crash interrupts.

They run as real activities (Temporal's ActivityEnvironment) against the FAKE GitHub over
a real git repository; every answer the fake gives is checked against GitHub's OpenAPI
description at teardown (conftest.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.gitops import ACTIVITIES
from activities.gitops.pulls import open_pull_request, read_pull_request
from devcluster.github_fake.server import FakeGitHub
from models.errors import NON_RETRYABLE
from models.gitops import PullRequestChange, PullRequestRef
from worker_main import all_activities

WORKFLOW = "quarantine/shop/payments"
PULLS = "/repos/{owner}/{repo}/pulls"
DEPLOYMENT = "clusters/dev/shop/deployment-checkout.yaml"
POLICY = "clusters/dev/shop/authorizationpolicy-payments-quarantine.yaml"

DENY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "payments-quarantine", "namespace": "shop"},
    "spec": {"action": "DENY", "rules": [{}], "selector": {"matchLabels": {"app": "payments"}}},
}


@pytest.fixture
def gitops(fake_github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """The GitOps settings pointed at the fake, GitHub Enterprise style, token in a file."""
    token_file = tmp_path / "token"
    token_file.write_text(fake_github.token + "\n")
    monkeypatch.setenv("AUTOPILOT_GITOPS_API_URL", fake_github.api_url)
    monkeypatch.setenv("AUTOPILOT_GITOPS_REPOSITORY", fake_github.repository)
    monkeypatch.setenv("AUTOPILOT_GITOPS_PATH", "clusters/dev")
    monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AUTOPILOT_TEMPORAL_UI_URL", "http://temporal-ui.example:8233")
    return fake_github


def quarantine(
    step: str = "run1:2:gitops.open_pull_request", **changes: object
) -> PullRequestChange:
    return PullRequestChange.model_validate(
        {
            "workflow_id": WORKFLOW,
            "step_key": step,
            "title": "Quarantine shop/payments",
            "why": "Alert PaymentsExfiltration fired for shop/payments.",
            "changes": changes.get("changes") or [{"op": "put", "manifest": DENY}],
        }
    )


def autopilot_branches(fake: FakeGitHub) -> list[str]:
    return [name for name in fake.repo.branches() if name.startswith("autopilot/")]


async def test_a_change_becomes_one_pull_request_that_says_what_why_and_links_the_workflow(
    gitops: FakeGitHub,
) -> None:
    opened = await ActivityEnvironment().run(open_pull_request, quarantine())

    assert opened.outcome == "opened" and opened.number == 1
    assert opened.branch.startswith("autopilot/quarantine/shop/payments/")
    pr = gitops.pull(1)
    assert pr.head == opened.branch and pr.base == "main"
    assert pr.body is not None
    assert f"`{POLICY}`: AuthorizationPolicy `shop/payments-quarantine` written" in pr.body
    assert "Alert PaymentsExfiltration fired" in pr.body
    link = (
        "http://temporal-ui.example:8233/namespaces/default/workflows/quarantine%2Fshop%2Fpayments"
    )
    assert link in pr.body
    assert yaml.safe_load(gitops.file_at(opened.branch, POLICY) or "") == DENY
    assert gitops.file_at("main", POLICY) is None  # nothing reaches the base before review


async def test_a_retried_step_finds_its_own_pull_request_instead_of_opening_a_second(
    gitops: FakeGitHub,
) -> None:
    first = await ActivityEnvironment().run(open_pull_request, quarantine())
    again = await ActivityEnvironment().run(open_pull_request, quarantine())

    assert (again.outcome, again.number, again.branch) == ("found", first.number, first.branch)
    assert len(gitops.pulls()) == 1 and len(autopilot_branches(gitops)) == 1


async def test_a_worker_killed_between_the_push_and_the_pull_request_ends_with_one_of_each(
    gitops: FakeGitHub,
) -> None:
    gitops.fail_next("POST", PULLS)  # the branch is pushed, then the worker dies
    with pytest.raises(ApplicationError) as interrupted:
        await ActivityEnvironment().run(open_pull_request, quarantine())
    assert not interrupted.value.non_retryable  # Temporal retries it
    assert autopilot_branches(gitops) and not gitops.pulls()

    retried = await ActivityEnvironment().run(open_pull_request, quarantine())

    assert retried.outcome == "opened"
    assert len(gitops.pulls()) == 1 and len(autopilot_branches(gitops)) == 1
    commits = gitops.repo.commits_between(gitops.repo.resolve("main"), retried.branch)
    assert len(commits) == 1  # the retry committed nothing again


async def test_a_worker_killed_after_the_pull_request_opened_ends_with_one_of_each(
    gitops: FakeGitHub,
) -> None:
    gitops.lose_next_answer("POST", PULLS)  # GitHub opened it; the answer never arrived
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(open_pull_request, quarantine())
    assert len(gitops.pulls()) == 1

    retried = await ActivityEnvironment().run(open_pull_request, quarantine())

    assert (retried.outcome, retried.number) == ("found", 1)
    assert len(gitops.pulls()) == 1 and len(autopilot_branches(gitops)) == 1


async def test_two_steps_of_one_workflow_open_two_pull_requests(gitops: FakeGitHub) -> None:
    env = ActivityEnvironment()
    first = await env.run(open_pull_request, quarantine("run1:2:gitops.open_pull_request"))
    gitops.merge(first.number or 0)
    release = quarantine(
        "run1:5:gitops.open_pull_request",
        changes=[
            {
                "op": "remove",
                "kind": "AuthorizationPolicy",
                "namespace": "shop",
                "name": "payments-quarantine",
            }
        ],
    )
    second = await env.run(open_pull_request, release)

    assert second.outcome == "opened" and second.number == 2 and second.branch != first.branch
    gitops.merge(2)
    assert gitops.file_at("main", POLICY) is None


async def test_a_rollback_sets_the_image_in_the_deployment_s_file_and_the_merge_is_read_back(
    gitops: FakeGitHub,
) -> None:
    env = ActivityEnvironment()
    change = quarantine(
        changes=[
            {
                "op": "set-image",
                "namespace": "shop",
                "name": "checkout",
                "container": "checkout",
                "image": "shop/checkout:0.9",
            }
        ]
    )
    opened = await env.run(open_pull_request, change)
    number = PullRequestRef(number=opened.number or 0)
    assert (await env.run(read_pull_request, number)).state == "open"

    merge_sha = gitops.merge(number.number)
    state = await env.run(read_pull_request, number)

    assert (state.state, state.merge_sha) == ("merged", merge_sha)
    deployment = yaml.safe_load(gitops.file_at("main", DEPLOYMENT) or "")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:0.9"


async def test_a_pull_request_closed_unmerged_reads_as_closed(gitops: FakeGitHub) -> None:
    env = ActivityEnvironment()
    opened = await env.run(open_pull_request, quarantine())
    gitops.close(opened.number or 0)

    state = await env.run(read_pull_request, PullRequestRef(number=opened.number or 0))

    assert (state.state, state.merge_sha) == ("closed", None)


async def test_a_change_git_already_holds_opens_nothing(gitops: FakeGitHub) -> None:
    same_image = quarantine(
        changes=[
            {
                "op": "set-image",
                "namespace": "shop",
                "name": "checkout",
                "container": "checkout",
                "image": "shop/checkout:1.0",
            }
        ]
    )
    result = await ActivityEnvironment().run(open_pull_request, same_image)

    assert (result.outcome, result.number) == ("unchanged", None)
    assert not gitops.pulls() and not autopilot_branches(gitops)


async def test_a_kustomize_overlay_lists_the_new_file_and_pins_the_image(
    gitops: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPILOT_GITOPS_LAYOUT", "kustomize")
    monkeypatch.setenv("AUTOPILOT_GITOPS_PATH", "clusters/dev/overlay")
    gitops.seed({"clusters/dev/overlay/kustomization.yaml": "resources:\n- ../base\n"})
    change = quarantine(
        changes=[
            {"op": "put", "manifest": DENY},
            {
                "op": "set-image",
                "namespace": "shop",
                "name": "checkout",
                "container": "checkout",
                "image": "registry.example:5000/shop/checkout:0.9",
            },
        ]
    )
    opened = await ActivityEnvironment().run(open_pull_request, change)

    overlay = yaml.safe_load(
        gitops.file_at(opened.branch, "clusters/dev/overlay/kustomization.yaml") or ""
    )
    assert overlay["resources"] == ["../base", "shop/authorizationpolicy-payments-quarantine.yaml"]
    assert overlay["images"] == [{"name": "registry.example:5000/shop/checkout", "newTag": "0.9"}]
    written = gitops.file_at(
        opened.branch, "clusters/dev/overlay/shop/authorizationpolicy-payments-quarantine.yaml"
    )
    assert yaml.safe_load(written or "") == DENY


async def test_a_deployment_missing_from_the_repository_fails_at_once_naming_the_file(
    gitops: FakeGitHub,
) -> None:
    change = quarantine(
        changes=[
            {
                "op": "set-image",
                "namespace": "shop",
                "name": "cart",
                "container": "cart",
                "image": "x:1",
            }
        ]
    )
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(open_pull_request, change)

    assert failed.value.type == NON_RETRYABLE
    assert "clusters/dev/shop/deployment-cart.yaml" in failed.value.message


async def test_the_token_appears_in_no_log_and_no_error(
    gitops: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    env = ActivityEnvironment()
    opened = await env.run(open_pull_request, quarantine())
    wrong = "ghp_wrong_token_that_must_never_be_shown_42"
    (tmp_path / "wrong").write_text(wrong)
    monkeypatch.setenv("AUTOPILOT_GITOPS_TOKEN_FILE", str(tmp_path / "wrong"))
    with pytest.raises(ApplicationError) as refused:
        await env.run(read_pull_request, PullRequestRef(number=opened.number or 0))

    error = refused.value
    assert error.non_retryable and "401" in error.message and "Bad credentials" in error.message
    assert error.__cause__ is None and error.__suppress_context__  # no PyGithub error rides along
    recorded = Failure()  # what Temporal writes into the workflow's history for this error
    DataConverter.default.failure_converter.to_failure(
        error, DataConverter.default.payload_converter, recorded
    )
    shown = " ".join([str(recorded), error.message, opened.model_dump_json(), caplog.text])
    assert gitops.token not in shown and wrong not in shown


async def test_without_a_repository_the_workers_say_which_setting_is_missing(
    gitops: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOPILOT_GITOPS_REPOSITORY")
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(read_pull_request, PullRequestRef(number=1))
    assert failed.value.non_retryable and "AUTOPILOT_GITOPS_REPOSITORY" in failed.value.message


def test_the_worker_serves_the_gitops_activities() -> None:
    served = {fn.__temporal_activity_definition.name for fn in all_activities()}  # type: ignore[attr-defined]
    assert {"gitops.open_pull_request", "gitops.read_pull_request"} <= served
    assert len(ACTIVITIES) == 2


def app_key(tmp_path: Path, name: str) -> tuple[Path, bytes]:
    """A new RSA key of a GitHub App: its private PEM file and its public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / name
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


async def test_a_github_app_installation_opens_the_pull_request_with_a_token_of_its_own(
    gitops: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = app_key(tmp_path, "app.pem")
    gitops.app_id, gitops.app_public_key_pem, gitops.app_installation_id = 4242, public, 77
    monkeypatch.delenv("AUTOPILOT_GITOPS_TOKEN_FILE")
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_ID", "4242")
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_INSTALLATION_ID", "77")
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_PRIVATE_KEY_FILE", str(private))

    opened = await ActivityEnvironment().run(open_pull_request, quarantine())

    assert opened.outcome == "opened"
    exchanged = [e for e in gitops.exchanges if e.operation and e.operation.startswith("/app/")]
    assert [e.status for e in exchanged] == [201]


async def test_a_github_app_with_the_wrong_key_is_refused_at_once(
    gitops: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, public = app_key(tmp_path, "registered.pem")
    other, _ = app_key(tmp_path, "other.pem")
    gitops.app_id, gitops.app_public_key_pem = 4242, public
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_ID", "4242")
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_INSTALLATION_ID", "1")
    monkeypatch.setenv("AUTOPILOT_GITOPS_APP_PRIVATE_KEY_FILE", str(other))

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(read_pull_request, PullRequestRef(number=1))

    assert refused.value.non_retryable and "401" in refused.value.message
    assert "PRIVATE KEY" not in refused.value.message
