"""The JSON bodies the FAKE GitHub answers and sends, shaped as GitHub's own.

Every field GitHub's OpenAPI description marks as required is present (the contract tests
check each body the suite sees); values the fake has no notion of (stars, forks, avatars)
are plausible constants.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from devcluster.github_fake.gitrepo import CommitInfo, FileChanges

Json = dict[str, Any]

#: A fixed creation date for the repository and its owner (the fake has no history).
EPOCH = "2024-01-01T00:00:00Z"


@dataclass
class Urls:
    """Where the fake is: the API base (``…/api/v3``) and the web base (clone, html)."""

    api: str
    web: str


@dataclass
class PullRequestRecord:
    """One pull request, as the fake remembers it."""

    number: int
    title: str
    body: str | None
    head: str
    base: str
    user: str
    created_at: str
    updated_at: str
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    #: The head commit when the PR was merged or closed (the branch may move or vanish later).
    frozen_head_sha: str | None = None
    draft: bool = False
    extra: Json = field(default_factory=dict)


def user(urls: Urls, login: str, user_id: int) -> Json:
    """A ``simple-user``."""
    api = f"{urls.api}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": _node_id("U", user_id),
        "avatar_url": f"{urls.web}/avatars/{login}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "site_admin": False,
    }


def repository(
    urls: Urls, full_name: str, repo_id: int, owner: Json, default_branch: str, pushed_at: str
) -> Json:
    """A ``repository`` (also valid as the webhooks' ``repository-webhooks``)."""
    api = f"{urls.api}/repos/{full_name}"
    name = full_name.split("/", 1)[1]
    return {
        "id": repo_id,
        "node_id": _node_id("R", repo_id),
        "name": name,
        "full_name": full_name,
        "owner": owner,
        "private": True,
        "html_url": f"{urls.web}/{full_name}",
        "description": "configuration repository (fake GitHub)",
        "fork": False,
        "url": api,
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "assignees_url": f"{api}/assignees{{/user}}",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "comments_url": f"{api}/comments{{/number}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "contributors_url": f"{api}/contributors",
        "deployments_url": f"{api}/deployments",
        "downloads_url": f"{api}/downloads",
        "events_url": f"{api}/events",
        "forks_url": f"{api}/forks",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_url": f"{urls.web}/{full_name}.git",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "issues_url": f"{api}/issues{{/number}}",
        "keys_url": f"{api}/keys{{/key_id}}",
        "labels_url": f"{api}/labels{{/name}}",
        "languages_url": f"{api}/languages",
        "merges_url": f"{api}/merges",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "releases_url": f"{api}/releases{{/id}}",
        "ssh_url": f"git@fake-github:{full_name}.git",
        "stargazers_url": f"{api}/stargazers",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "tags_url": f"{api}/tags",
        "teams_url": f"{api}/teams",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "clone_url": f"{urls.web}/{full_name}.git",
        "mirror_url": None,
        "hooks_url": f"{api}/hooks",
        "svn_url": f"{urls.web}/{full_name}",
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "license": None,
        "pushed_at": pushed_at,
        "created_at": EPOCH,
        "updated_at": pushed_at,
        "allow_forking": False,
        "web_commit_signoff_required": False,
    }


def git_ref(urls: Urls, full_name: str, ref: str, sha: str) -> Json:
    """A ``git-ref``."""
    api = f"{urls.api}/repos/{full_name}"
    return {
        "ref": ref,
        "node_id": _node_id("REF", abs(hash(ref)) % 10**9),
        "url": f"{api}/git/{ref}",
        "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
    }


def _content_urls(urls: Urls, full_name: str, path: str, sha: str, ref: str) -> Json:
    api = f"{urls.api}/repos/{full_name}"
    self_url = f"{api}/contents/{path}?ref={ref}"
    html = f"{urls.web}/{full_name}/blob/{ref}/{path}"
    git = f"{api}/git/blobs/{sha}"
    return {
        "url": self_url,
        "html_url": html,
        "git_url": git,
        "download_url": f"{urls.web}/{full_name}/raw/{ref}/{path}",
        "_links": {"self": self_url, "git": git, "html": html},
    }


def content_file(urls: Urls, full_name: str, path: str, sha: str, data: bytes, ref: str) -> Json:
    """A ``content-file`` (base64 content, as GitHub sends it)."""
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(data),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": base64.b64encode(data).decode(),
        "sha": sha,
        **_content_urls(urls, full_name, path, sha, ref),
    }


def file_commit(
    urls: Urls,
    full_name: str,
    path: str,
    blob: tuple[str, int] | None,
    commit: CommitInfo,
    ref: str,
) -> Json:
    """A ``file-commit``: the file written (None when deleted) and the commit made."""
    content: Json | None = None
    if blob is not None:
        sha, size = blob
        content = {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": size,
            "type": "file",
            **_content_urls(urls, full_name, path, sha, ref),
        }
    return {"content": content, "commit": git_commit(urls, full_name, commit)}


def git_commit(urls: Urls, full_name: str, commit: CommitInfo) -> Json:
    """The ``commit`` part of a ``file-commit``."""
    api = f"{urls.api}/repos/{full_name}"
    return {
        "sha": commit.sha,
        "node_id": _node_id("C", int(commit.sha[:8], 16)),
        "url": f"{api}/git/commits/{commit.sha}",
        "html_url": f"{urls.web}/{full_name}/commit/{commit.sha}",
        "author": {
            "name": commit.author.name,
            "email": commit.author.email,
            "date": commit.author_date,
        },
        "committer": {
            "name": commit.committer.name,
            "email": commit.committer.email,
            "date": commit.committer_date,
        },
        "message": commit.message,
        "tree": {"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
        "parents": [
            {
                "sha": parent,
                "url": f"{api}/git/commits/{parent}",
                "html_url": f"{urls.web}/{full_name}/commit/{parent}",
            }
            for parent in commit.parents
        ],
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


@dataclass
class PullContext:
    """What a pull request body needs beyond the record: repo, users, live SHAs, stats."""

    urls: Urls
    full_name: str
    repo: Json
    users: dict[str, Json]
    head_sha: str
    base_sha: str
    commits: int
    additions: int
    deletions: int
    changed_files: int
    mergeable: bool | None


def pull_request(pr: PullRequestRecord, ctx: PullContext, *, simple: bool = False) -> Json:
    """A ``pull-request`` (or ``pull-request-simple`` for lists)."""
    api = f"{ctx.urls.api}/repos/{ctx.full_name}"
    html = f"{ctx.urls.web}/{ctx.full_name}/pull/{pr.number}"
    owner_login = ctx.full_name.split("/", 1)[0]
    owner = ctx.repo["owner"]

    def side(branch: str, sha: str) -> Json:
        return {
            "label": f"{owner_login}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": owner,
            "repo": ctx.repo,
        }

    def link(href: str) -> Json:
        return {"href": href}

    body: Json = {
        "url": f"{api}/pulls/{pr.number}",
        "id": 1000 + pr.number,
        "node_id": _node_id("PR", pr.number),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{api}/issues/{pr.number}",
        "commits_url": f"{api}/pulls/{pr.number}/commits",
        "review_comments_url": f"{api}/pulls/{pr.number}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{pr.number}/comments",
        "statuses_url": f"{api}/statuses/{ctx.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": ctx.users[pr.user],
        "body": pr.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(pr.head, ctx.head_sha),
        "base": side(pr.base, ctx.base_sha),
        "_links": {
            "self": link(f"{api}/pulls/{pr.number}"),
            "html": link(html),
            "issue": link(f"{api}/issues/{pr.number}"),
            "comments": link(f"{api}/issues/{pr.number}/comments"),
            "review_comments": link(f"{api}/pulls/{pr.number}/comments"),
            "review_comment": link(f"{api}/pulls/comments{{/number}}"),
            "commits": link(f"{api}/pulls/{pr.number}/commits"),
            "statuses": link(f"{api}/statuses/{ctx.head_sha}"),
        },
        "author_association": "OWNER",
        "auto_merge": None,
        "draft": pr.draft,
    }
    if simple:
        return body
    body.update(
        {
            "merged": pr.merged,
            "mergeable": ctx.mergeable,
            "rebaseable": ctx.mergeable,
            "mergeable_state": "clean"
            if ctx.mergeable
            else "dirty"
            if pr.state == "open"
            else "unknown",
            "merged_by": ctx.users[pr.merged_by] if pr.merged_by else None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": ctx.commits,
            "additions": ctx.additions,
            "deletions": ctx.deletions,
            "changed_files": ctx.changed_files,
        }
    )
    return body


def push_commit(urls: Urls, full_name: str, commit: CommitInfo, changes: FileChanges) -> Json:
    """One commit of a ``push`` webhook."""
    return {
        "id": commit.sha,
        "tree_id": commit.tree,
        "distinct": True,
        "message": commit.message,
        "timestamp": commit.committer_date,
        "url": f"{urls.web}/{full_name}/commit/{commit.sha}",
        "author": {"name": commit.author.name, "email": commit.author.email},
        "committer": {"name": commit.committer.name, "email": commit.committer.email},
        "added": changes.added,
        "removed": changes.removed,
        "modified": changes.modified,
    }


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"fake:{kind}{number}".encode()).decode()
