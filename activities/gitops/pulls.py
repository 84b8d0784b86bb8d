"""Open a pull request for a change to manifests, idempotently; read a pull request's state.

``gitops.open_pull_request`` does, in this order, each step finding what an earlier
attempt left so that a worker killed anywhere ends with one branch and one pull request:

1. a pull request whose head is the step's branch (``models.gitops.branch_name``), in any
   state, is the answer (``found``): an earlier attempt opened it;
2. the branch is created from the base branch unless it exists; when the base already
   holds every file as wanted, nothing is created and the answer is ``unchanged``;
3. the files are rendered against the branch (:mod:`activities.gitops.render`) and only
   those that differ are committed, one commit per file (GitHub's contents API);
4. the pull request is opened; if GitHub says one exists (a race), it is looked up again.

All calls are PyGithub's, through the one client factory (:mod:`service.github`), in a
thread (PyGithub blocks). Errors are rebuilt by :mod:`activities.gitops.errors` so no
token, header or URL with credentials reaches the workflow's history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from github import GithubException, InputGitAuthor
from github.ContentFile import ContentFile
from github.PullRequest import PullRequest
from github.Repository import Repository
from pydantic import SecretStr
from requests import RequestException
from temporalio import activity

from activities.errors import non_retryable
from activities.gitops.errors import github_failure
from activities.gitops.render import RenderError, object_file, render
from models.gitops import (
    PullRequestChange,
    PullRequestOpened,
    PullRequestRef,
    PullRequestState,
    PutManifest,
    RemoveManifest,
)
from service.github import GitHubNotConfigured, credentials, github_client
from service.settings import GitOpsSettings, TemporalSettings

#: What the body of every Autopilot pull request ends with: who opened it, for which step.
MARKER = "<!-- autopilot: opened by a GitOps worker; do not edit this line -->"


@dataclass
class _Session:
    """One activity's view of the repository, and the secret to scrub from errors."""

    settings: GitOpsSettings
    token: SecretStr
    repo: Repository

    @property
    def owner(self) -> str:
        return self.repo.full_name.split("/", 1)[0]

    def call(
        self, doing: str, fn: Any, *args: Any, tolerate: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """Run one PyGithub call, turning its failure into a token-free activity error.

        A GitHub answer whose status is in ``tolerate`` (404: not there) returns None.
        """
        try:
            return fn(*args, **kwargs)
        except GithubException as error:
            if error.status in tolerate:
                return None
            raise github_failure(error, doing, self.token) from None
        except RequestException as error:
            raise github_failure(error, doing, self.token) from None


def _session() -> _Session:
    settings = GitOpsSettings()
    if settings.repository is None:
        raise non_retryable("GitOps is not configured: set AUTOPILOT_GITOPS_REPOSITORY")
    try:
        auth, secret = credentials(settings)
    except GitHubNotConfigured as error:
        raise non_retryable(str(error)) from None
    repo = github_client(settings, auth).get_repo(settings.repository)
    return _Session(settings, secret, repo)


# -- reading -------------------------------------------------------------------------


def _find_pull(session: _Session, branch: str) -> PullRequest | None:
    pulls = session.repo.get_pulls(
        state="all", head=f"{session.owner}:{branch}", base=session.settings.base_branch
    )
    found = session.call(f"listing the pull requests of {branch}", lambda: next(iter(pulls), None))
    return found if isinstance(found, PullRequest) else None


def _branch_sha(session: _Session, branch: str) -> str | None:
    def read() -> str:
        return str(session.repo.get_git_ref(f"heads/{branch}").object.sha)

    found: str | None = session.call(f"reading the branch {branch}", read, tolerate=(404,))
    return found


def _read_file(session: _Session, path: str, ref: str) -> ContentFile | None:
    found = session.call(
        f"reading {path}", session.repo.get_contents, path, ref=ref, tolerate=(404,)
    )
    if isinstance(found, list):
        raise non_retryable(f"{path} is a directory in the configuration repository")
    return found if isinstance(found, ContentFile) else None


class _Files:
    """Files of one ref, read once each: their text and blob SHA."""

    def __init__(self, session: _Session, ref: str) -> None:
        self.session, self.ref = session, ref
        self.read: dict[str, ContentFile | None] = {}

    def get(self, path: str) -> ContentFile | None:
        if path not in self.read:
            self.read[path] = _read_file(self.session, path, self.ref)
        return self.read[path]

    def text(self, path: str) -> str | None:
        found = self.get(path)
        return found.decoded_content.decode() if found is not None else None


def _rendered(change: PullRequestChange, files: _Files) -> dict[str, str | None]:
    settings = files.session.settings
    try:
        return render(change.changes, path=settings.path, layout=settings.layout, read=files.text)
    except RenderError as error:
        raise non_retryable(str(error)) from None


def _differs(wanted: dict[str, str | None], files: _Files) -> dict[str, str | None]:
    return {path: text for path, text in wanted.items() if files.text(path) != text}


# -- writing -------------------------------------------------------------------------


def _commit(
    session: _Session, branch: str, path: str, text: str | None, files: _Files, message: str
) -> None:
    who = InputGitAuthor(session.settings.committer_name, session.settings.committer_email)
    existing = files.get(path)
    if text is None:
        if existing is not None:
            session.call(
                f"removing {path}",
                session.repo.delete_file,
                path,
                message,
                existing.sha,
                branch=branch,
                committer=who,
                author=who,
            )
    elif existing is None:
        session.call(
            f"writing {path}",
            session.repo.create_file,
            path,
            message,
            text,
            branch=branch,
            committer=who,
            author=who,
        )
    else:
        session.call(
            f"writing {path}",
            session.repo.update_file,
            path,
            message,
            text,
            existing.sha,
            branch=branch,
            committer=who,
            author=who,
        )


def describe_change(change: PullRequestChange, path: str) -> list[str]:
    """One Markdown line per manifest change: file, object and what happens to it."""
    lines = []
    for item in change.changes:
        where = object_file(path, item)
        what = f"{item.kind} `{item.namespace}/{item.name}`"
        if isinstance(item, PutManifest):
            lines.append(f"- `{where}`: {what} written")
        elif isinstance(item, RemoveManifest):
            lines.append(f"- `{where}`: {what} removed")
        else:
            lines.append(f"- {what}: container `{item.container}` set to `{item.image}`")
    return lines


def pull_request_body(change: PullRequestChange, path: str, workflow_url: str | None) -> str:
    """What, why, and the workflow (linked to the Temporal UI when its URL is known)."""
    workflow = f"`{change.workflow_id}`"
    if workflow_url:
        workflow = f"[{workflow}]({workflow_url}) (Temporal UI)"
    return "\n".join(
        [
            "### What",
            *describe_change(change, path),
            "",
            "### Why",
            change.why,
            "",
            "### Who",
            f"Opened by Autopilot for the workflow {workflow}, step `{change.step_key}`. "
            "Merging it lets the GitOps engine apply the change; closing it refuses it.",
            "",
            MARKER,
        ]
    )


def _opened(
    outcome: str, pull: PullRequest | None, branch: str, files: list[str]
) -> PullRequestOpened:
    if pull is None:
        return PullRequestOpened(outcome="unchanged", branch=branch, files=files)
    return PullRequestOpened(
        outcome=outcome,
        number=pull.number,
        url=pull.html_url,
        branch=branch,
        head_sha=pull.head.sha,
        files=files,
    )


def open_pull_request_now(change: PullRequestChange) -> PullRequestOpened:
    """The blocking body of ``gitops.open_pull_request`` (see the module docstring)."""
    session = _session()
    settings, branch = session.settings, change.branch
    existing = _find_pull(session, branch)
    if existing is not None:
        return _opened("found", existing, branch, [])
    head = _branch_sha(session, branch)
    if head is None:
        base = _branch_sha(session, settings.base_branch)
        if base is None:
            raise non_retryable(f"the base branch {settings.base_branch} does not exist")
        base_files = _Files(session, base)
        wanted = _rendered(change, base_files)
        if not _differs(wanted, base_files):
            return _opened("unchanged", None, branch, sorted(wanted))
        # 422: it exists already (a concurrent attempt made it): go on with it.
        session.call(
            f"creating {branch}",
            session.repo.create_git_ref,
            f"refs/heads/{branch}",
            base,
            tolerate=(422,),
        )
    branch_files = _Files(session, branch)
    wanted = _rendered(change, branch_files)
    message = f"{change.title}\n\nAutopilot workflow {change.workflow_id}, step {change.step_key}"
    for path, text in _differs(wanted, branch_files).items():
        _commit(session, branch, path, text, branch_files, message)
    ui = TemporalSettings().workflow_url(change.workflow_id)
    body = pull_request_body(change, settings.path, ui)
    try:
        pull = session.repo.create_pull(
            base=settings.base_branch, head=branch, title=change.title, body=body
        )
    except GithubException as error:
        if error.status != 422:
            raise github_failure(
                error, f"opening the pull request of {branch}", session.token
            ) from None
        found = _find_pull(session, branch)  # opened meanwhile, or nothing to merge
        if found is not None:
            return _opened("found", found, branch, sorted(wanted))
        if "No commits between" in str(error.data):
            return _opened("unchanged", None, branch, sorted(wanted))
        raise github_failure(
            error, f"opening the pull request of {branch}", session.token
        ) from None
    except RequestException as error:
        raise github_failure(
            error, f"opening the pull request of {branch}", session.token
        ) from None
    return _opened("opened", pull, branch, sorted(wanted))


def read_pull_request_now(ref: PullRequestRef) -> PullRequestState:
    """The blocking body of ``gitops.read_pull_request``."""
    session = _session()

    def read() -> PullRequestState:
        pull = session.repo.get_pull(ref.number)
        state = "merged" if pull.merged else "closed" if pull.state == "closed" else "open"
        return PullRequestState(
            number=pull.number,
            state=state,
            merge_sha=pull.merge_commit_sha if pull.merged else None,
            head_sha=pull.head.sha,
            url=pull.html_url,
        )

    result: PullRequestState = session.call(f"reading pull request #{ref.number}", read)
    return result


@activity.defn(name="gitops.open_pull_request")
async def open_pull_request(change: PullRequestChange) -> PullRequestOpened:
    """Commit the change on the step's branch and open its pull request, once per step."""
    return await asyncio.to_thread(open_pull_request_now, change)


@activity.defn(name="gitops.read_pull_request")
async def read_pull_request(ref: PullRequestRef) -> PullRequestState:
    """Open, merged (with the merge commit) or closed unmerged: the polling fallback."""
    return await asyncio.to_thread(read_pull_request_now, ref)
