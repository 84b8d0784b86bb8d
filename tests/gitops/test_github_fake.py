"""The FAKE GitHub answers PyGithub as GitHub does, over a real git repository.

Every test here is also a contract test (see conftest.py): what the fake said is
validated against GitHub's official OpenAPI descriptions at teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import github
import pytest
from github import Auth, Github
from pydantic import SecretStr

from devcluster.github_fake.server import FakeGitHub
from tests.gitops.contract import assert_all_valid, response_errors
from tests.waiting import eventually
from watchers.webhooks.auth import verify_signature
from watchers.webhooks.github import PullRequestEvent, PushEvent

BRANCH = "autopilot/quarantine/shop/payments/s1"


def client(fake: FakeGitHub, token: str | None = None) -> Any:
    gh = Github(base_url=fake.api_url, auth=Auth.Token(token or fake.token), lazy=True, retry=None)
    return gh.get_repo(fake.repository)


def open_pull(fake: FakeGitHub) -> Any:
    repo = client(fake)
    main = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref(f"refs/heads/{BRANCH}", main)
    repo.create_file(
        "clusters/dev/shop/ap.yaml", "deny", "kind: AuthorizationPolicy\n", branch=BRANCH
    )
    return repo.create_pull(base="main", head=BRANCH, title="Quarantine shop/payments", body="why")


def test_a_merged_pull_request_is_a_real_merge_commit_on_the_base_branch(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    pr = open_pull(fake_github)
    result = pr.merge()

    assert result.merged
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", fake_github.clone_url, str(clone)], check=True)
    parents = subprocess.run(
        ["git", "log", "-1", "--format=%H %P"], cwd=clone, capture_output=True, text=True
    ).stdout.split()
    assert parents[0] == result.sha and len(parents) == 3  # the merge and its two parents
    assert (clone / "clusters/dev/shop/ap.yaml").read_text() == "kind: AuthorizationPolicy\n"
    again = client(fake_github).get_pull(pr.number)
    assert again.merged and again.merge_commit_sha == result.sha and again.state == "closed"


def test_pull_requests_are_listed_by_head_and_state(fake_github: FakeGitHub) -> None:
    pr = open_pull(fake_github)
    repo = client(fake_github)

    assert [p.number for p in repo.get_pulls(state="open", head=f"fleet:{BRANCH}")] == [pr.number]
    assert list(repo.get_pulls(state="closed", head=f"fleet:{BRANCH}")) == []
    pr.edit(state="closed")
    assert [p.state for p in repo.get_pulls(state="all", head=f"fleet:{BRANCH}")] == ["closed"]
    assert not client(fake_github).get_pull(pr.number).merged


def test_a_second_pull_request_for_the_same_branch_is_refused(fake_github: FakeGitHub) -> None:
    open_pull(fake_github)
    with pytest.raises(github.GithubException) as refused:
        client(fake_github).create_pull(base="main", head=BRANCH, title="again", body="")
    assert refused.value.status == 422
    assert "already exists" in str(refused.value.data)


def test_an_existing_branch_cannot_be_created_twice(fake_github: FakeGitHub) -> None:
    repo = client(fake_github)
    main = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref("refs/heads/x", main)
    with pytest.raises(github.GithubException) as refused:
        repo.create_git_ref("refs/heads/x", main)
    assert refused.value.status == 422


def test_a_file_update_needs_the_current_blob_sha(fake_github: FakeGitHub) -> None:
    repo = client(fake_github)
    path = "clusters/dev/shop/deployment-checkout.yaml"
    with pytest.raises(github.GithubException) as refused:
        repo.update_file(path, "change", "x: 1\n", "0" * 40, branch="main")
    assert refused.value.status == 409
    current = repo.get_contents(path, ref="main")
    repo.update_file(path, "change", "x: 1\n", current.sha, branch="main")
    assert fake_github.file_at("main", path) == "x: 1\n"


def test_a_wrong_token_is_refused_and_a_missing_thing_is_not_found(
    fake_github: FakeGitHub,
) -> None:
    with pytest.raises(github.BadCredentialsException):
        client(fake_github, token="ghp_wrong").get_git_ref("heads/main").object  # noqa: B018
    with pytest.raises(github.UnknownObjectException):
        client(fake_github).get_contents("nothing/here.yaml", ref="main")
    with pytest.raises(github.UnknownObjectException):
        client(fake_github).get_pull(99).title  # noqa: B018


def test_pushing_over_git_needs_the_token(fake_github: FakeGitHub, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", fake_github.clone_url, str(clone)], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"}
    anonymous = subprocess.run(
        ["git", "push", "origin", "HEAD:refs/heads/other"], cwd=clone, env=env, capture_output=True
    )
    assert anonymous.returncode != 0
    with_token = fake_github.clone_url.replace("http://", f"http://x:{fake_github.token}@")
    pushed = subprocess.run(
        ["git", "push", with_token, "HEAD:refs/heads/other"],
        cwd=clone,
        env=env,
        capture_output=True,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert fake_github.repo.resolve("other") == fake_github.repo.resolve("main")


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_webhooks_are_signed_and_read_by_autopilot_s_github_endpoint_models(
    tmp_path: Path,
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=receiver.serve_forever, daemon=True).start()
    secret = "webhook-secret"
    url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/github"
    try:
        with FakeGitHub(tmp_path / "gh", webhook_url=url, webhook_secret=secret) as fake:
            fake.seed({"a.yaml": "a: 1\n"})
            pr = open_pull(fake)
            fake.merge(pr.number)
            await eventually(
                lambda: [d.sent for d in fake.deliveries],
                lambda sent: all(sent) and sent,
                what="every webhook sent",
            )
            deliveries, exchanges = list(fake.deliveries), list(fake.exchanges)
    finally:
        receiver.shutdown()
        receiver.server_close()

    events = [headers["x-github-event"] for headers, _ in received]
    assert events == ["push", "push", "pull_request", "pull_request", "push"]
    for headers, body in received:
        verify_signature(
            "X-Hub-Signature-256", headers["x-hub-signature-256"], SecretStr(secret), body
        )
    opened = PullRequestEvent.model_validate_json(received[2][1])
    closed = PullRequestEvent.model_validate_json(received[3][1])
    merged_push = PushEvent.model_validate_json(received[4][1])
    assert (opened.action, closed.action, closed.pull_request.merged) == ("opened", "closed", True)
    assert closed.pull_request.head.ref == BRANCH
    assert merged_push.ref == "refs/heads/main"
    assert "clusters/dev/shop/ap.yaml" in merged_push.commits[-1].added
    assert_all_valid(exchanges, deliveries)


def test_lost_webhooks_are_recorded_but_never_sent(fake_github: FakeGitHub) -> None:
    fake_github.webhook_url = "http://127.0.0.1:9/never"
    fake_github.send_webhooks = False
    pr = open_pull(fake_github)
    fake_github.close(pr.number)
    assert [d.sent for d in fake_github.deliveries if d.event == "pull_request"] == [False, False]


def test_the_contract_check_itself_refuses_a_body_github_would_never_send(
    fake_github: FakeGitHub,
) -> None:
    open_pull(fake_github)
    created = next(
        e
        for e in fake_github.exchanges
        if e.method == "POST" and e.status == 201 and e.operation == "/repos/{owner}/{repo}/pulls"
    )
    broken = {**created.body, "state": "draft"}
    del broken["head"]
    from dataclasses import replace

    errors = response_errors(replace(created, body=broken))
    assert any("head" in error for error in errors)
    assert any("draft" in error for error in errors)


def test_the_command_line_prints_its_urls_and_serves_until_terminated(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("ghp_command_line\n")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "devcluster.github_fake"),
            *("--root", str(tmp_path / "gh"), "--token-file", str(token)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        refs = subprocess.run(
            ["git", "ls-remote", urls["clone_url"]], capture_output=True, text=True, check=True
        )
        assert refs.stdout == ""  # an empty repository, served
        gh = Github(
            base_url=urls["api_url"], auth=Auth.Token("ghp_command_line"), retry=None, lazy=True
        )
        with pytest.raises(github.UnknownObjectException):
            gh.get_repo("fleet/config").get_git_ref("heads/main").object  # noqa: B018
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
