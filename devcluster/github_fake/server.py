"""The FAKE GitHub: the REST endpoints Autopilot's GitOps layer calls, over a real git repo.

This is a test double, not GitHub. It answers exactly the calls PyGithub makes for what
``activities/gitops`` does (refs, file contents, pull requests and their merge), at
``/api/v3`` as GitHub Enterprise does (and at the root, as api.github.com does), checks the
token on every API call, and serves the repository itself over git's smart HTTP at
``/<owner>/<repo>.git`` (reads are open so Flux can clone; pushes need the token as the
basic-auth password, as on GitHub). Merging a pull request makes a real merge commit on
the base branch. Webhooks (``pull_request``, ``push``) are signed with the configured
secret and posted to the configured URL, in order, from one sender thread.

Every response it serves is recorded (:attr:`FakeGitHub.exchanges`) and so is every webhook
(:attr:`FakeGitHub.deliveries`): the contract tests validate them all against GitHub's
official OpenAPI descriptions, which is what keeps this fake honest.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import queue
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from devcluster.git_http import Background, run_http_backend
from devcluster.github_fake import payloads
from devcluster.github_fake.gitrepo import (
    ZERO_SHA,
    GitError,
    GitRepository,
    Identity,
    MergeConflict,
    RefConflict,
)
from devcluster.github_fake.payloads import Json, PullRequestRecord, Urls
from watchers.webhooks.auth import sign

log = logging.getLogger("devcluster.github_fake")

#: The prefix GitHub Enterprise Server puts before its REST API.
ENTERPRISE_PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"
#: Bodies above this are refused (the GitOps layer sends manifests of kilobytes).
MAX_BODY_BYTES = 4 * 1024 * 1024
#: How many pull requests one fake keeps (each is a few hundred bytes).
MAX_PULLS = 10_000
#: How many exchanges and deliveries are remembered for the contract tests.
MAX_RECORDS = 100_000


@dataclass(frozen=True)
class Exchange:
    """One response the fake gave: what was asked, the operation, the status, the body."""

    method: str
    path: str
    operation: str | None
    status: int
    body: Any


@dataclass
class WebhookDelivery:
    """One webhook: event, delivery GUID, payload, and how the receiver answered."""

    event: str
    delivery_id: str
    payload: Json
    status: int | None = None
    error: str | None = None
    sent: bool = False


class ApiError(Exception):
    """An error answer: status and GitHub's JSON error body."""

    def __init__(self, status: int, message: str, errors: list[Json] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.injected = False
        self.body: Json = {"message": message, "documentation_url": DOCS}
        if errors is not None:
            self.body["errors"] = errors
        if status == 401:
            self.body["status"] = "401"


def verify_app_jwt(token: str, public_key_pem: bytes) -> Json | None:
    """The claims of an RS256 JWT signed by the key's private half, or None."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    try:
        header, claims, signature = token.split(".")
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        if json.loads(decode(header)).get("alg") != "RS256":
            return None
        key.verify(
            decode(signature),
            f"{header}.{claims}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        parsed = json.loads(decode(claims))
    except (ValueError, InvalidSignature, binascii.Error):
        return None
    return parsed if isinstance(parsed, dict) else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Handler = Callable[["_Request"], tuple[int, Any]]


@dataclass
class _Request:
    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: Json


@dataclass
class _Route:
    method: str
    operation: str
    pattern: re.Pattern[str]
    handler: Handler


def _route(method: str, operation: str, handler: Handler) -> _Route:
    regex = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: _param(m.group(1)), re.escape(operation))
    return _Route(method, operation, re.compile(regex + "$"), handler)


def _param(name: str) -> str:
    # A ref and a file path may contain slashes; everything else is one segment.
    if name in ("ref", "path"):
        return f"(?P<{name}>.+)"
    return f"(?P<{name}>[^/]+)"


@dataclass
class FakeGitHub(Background):
    """A fake GitHub with one repository, on 127.0.0.1; see the module docstring.

    Attributes:
        root: Directory of the bare repository (``<root>/<owner>/<repo>.git``).
        repository: ``owner/repo``.
        token: The one token accepted (``Authorization: token …`` or ``Bearer …``).
        default_branch: The base branch.
        webhook_url: Where webhooks go (None: recorded, not sent).
        webhook_secret: The key of ``X-Hub-Signature-256``.
        send_webhooks: False loses every webhook (recorded as not sent), as a network might.
    """

    root: Path
    repository: str = "fleet/config"
    token: str = "fake-github-token"
    default_branch: str = "main"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    login: str = "autopilot-bot"
    send_webhooks: bool = True
    #: A GitHub App that may exchange a JWT (RS256, signed with its key) for a token.
    app_id: int | None = None
    app_public_key_pem: bytes | None = None
    app_installation_id: int = 1
    exchanges: list[Exchange] = field(default_factory=list)
    deliveries: list[WebhookDelivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.repository):
            raise ValueError(f"repository {self.repository!r} is not owner/name")
        self.owner = self.repository.split("/", 1)[0]
        self.repo = GitRepository.create(
            self.root, f"{self.repository}.git", initial_branch=self.default_branch
        )
        self._pulls: dict[int, PullRequestRecord] = {}
        self._lock = threading.RLock()
        self._failures: list[tuple[str, str, int, bool]] = []
        self._outbox: queue.Queue[WebhookDelivery | None] = queue.Queue()
        self._users = {self.login: 2, self.owner: 1, "reviewer": 3}
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fake = self
        self._threads: list[threading.Thread] = []
        self._installation_tokens: set[str] = set()
        self._routes = [
            _route(
                "POST",
                "/app/installations/{installation_id}/access_tokens",
                self._create_installation_token,
            ),
            _route("GET", "/repos/{owner}/{repo}/git/ref/{ref}", self._get_ref),
            _route("POST", "/repos/{owner}/{repo}/git/refs", self._create_ref),
            _route("GET", "/repos/{owner}/{repo}/contents/{path}", self._get_contents),
            _route("PUT", "/repos/{owner}/{repo}/contents/{path}", self._put_contents),
            _route("DELETE", "/repos/{owner}/{repo}/contents/{path}", self._delete_contents),
            _route("GET", "/repos/{owner}/{repo}/pulls", self._list_pulls),
            _route("POST", "/repos/{owner}/{repo}/pulls", self._create_pull),
            _route("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self._merge_pull),
            _route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self._get_pull),
            _route("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", self._update_pull),
        ]

    # -- lifecycle -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The web base: ``{url}/{owner}/{repo}.git`` clones, ``{url}/api/v3`` is the API."""
        return f"http://{self._server.server_address[0]!s}:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The REST base URL, GitHub Enterprise style (PyGithub's ``base_url``)."""
        return self.url + ENTERPRISE_PREFIX

    @property
    def clone_url(self) -> str:
        """The repository's smart-HTTP clone URL."""
        return f"{self.url}/{self.repository}.git"

    @property
    def urls(self) -> Urls:
        return Urls(api=self.api_url, web=self.url)

    def start(self) -> Self:
        """Serve and send webhooks from background threads; return self."""
        for target, name in ((self._server.serve_forever, "fake-github"), (self._send, "hooks")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving; webhooks still queued are dropped."""
        self._outbox.put(None)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    # -- what tests and humans do directly -----------------------------------------

    def seed(self, files: dict[str, str], message: str = "seed the configuration") -> str:
        """Commit ``files`` on the default branch directly (as a person pushing would)."""
        with self.repo.lock:
            parent = self.repo.resolve(self.default_branch)
            return self.repo.commit_files(
                self.default_branch,
                {path: text.encode() for path, text in files.items()},
                message,
                self._identity(self.owner),
                parent=parent,
                when=_now(),
            )

    def pull(self, number: int) -> PullRequestRecord:
        """The pull request ``number`` (KeyError if there is none)."""
        with self._lock:
            return self._pulls[number]

    def pulls(self) -> list[PullRequestRecord]:
        """Every pull request, oldest first."""
        with self._lock:
            return list(self._pulls.values())

    def merge(self, number: int, by: str = "reviewer") -> str:
        """Merge pull request ``number`` as a reviewer would in the UI; return the merge SHA."""
        return self._merge(number, by=by, expected_sha=None, title=None)

    def close(self, number: int, by: str = "reviewer") -> None:
        """Close pull request ``number`` unmerged, as a reviewer would in the UI."""
        self._set_state(number, "closed", by=by)

    def fail_next(self, method: str, operation: str, status: int = 502) -> None:
        """Answer the next ``method operation`` with ``status`` before doing anything."""
        with self._lock:
            self._failures.append((method, operation, status, False))

    def lose_next_answer(self, method: str, operation: str, status: int = 502) -> None:
        """Do the next ``method operation``, then answer ``status`` as if the reply was lost."""
        with self._lock:
            self._failures.append((method, operation, status, True))

    def file_at(self, branch: str, path: str) -> str | None:
        """The text of ``path`` on ``branch``, or None."""
        sha = self.repo.resolve(branch)
        found = self.repo.read_file(sha, path) if sha else None
        return found[1].decode() if found else None

    # -- HTTP plumbing ---------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request: git smart HTTP, or the REST API."""
        split = urlsplit(handler.path)
        path = split.path
        if re.match(rf"^/{re.escape(self.repository)}\.git(/|$)", path):
            self._serve_git(handler, path)
            return
        if path.startswith(ENTERPRISE_PREFIX + "/"):
            path = path[len(ENTERPRISE_PREFIX) :]
        operation: str | None = None
        try:
            route, params = self._match(handler.command, path)
            operation = route.operation
            self._injected_failure(handler.command, route.operation)
            if route.operation.startswith("/app/"):
                self._authenticate_app(handler.headers.get("Authorization"))
            else:
                self._authenticate(handler.headers.get("Authorization"))
            request = _Request(
                handler.command,
                params,
                {k: v[-1] for k, v in parse_qs(split.query).items()},
                self._json_body(handler),
            )
            status, body = route.handler(request)
            self._injected_failure(handler.command, route.operation, after=True)
        except ApiError as error:
            status, body = error.status, error.body
            if error.injected:
                operation = None  # a test's doing, not the fake's answer: not checked
        except GitError as error:
            log.warning("git failed: %s", error)
            status, body = 500, {"message": "git failed", "documentation_url": DOCS}
        self._record(Exchange(handler.command, path, operation, status, body))
        data = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        handler.end_headers()
        handler.wfile.write(data)

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        known_path = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            known_path = True
            if route.method != method:
                continue
            params = {name: unquote(value) for name, value in found.groupdict().items()}
            if "owner" in params and f"{params['owner']}/{params['repo']}" != self.repository:
                raise ApiError(404, "Not Found")
            return route, params
        raise ApiError(405 if known_path else 404, "Not Found")

    def _injected_failure(self, method: str, operation: str, *, after: bool = False) -> None:
        with self._lock:
            for index, (want_method, want_operation, status, late) in enumerate(self._failures):
                if (want_method, want_operation, late) == (method, operation, after):
                    del self._failures[index]
                    failure = ApiError(status, "injected failure (fake GitHub)")
                    failure.injected = True
                    raise failure

    def _authenticate(self, header: str | None) -> None:
        scheme, _, offered = (header or "").partition(" ")
        offered = offered.strip()
        with self._lock:
            accepted = [self.token, *self._installation_tokens]
        known = any(hmac.compare_digest(offered.encode(), good.encode()) for good in accepted)
        if scheme.lower() not in ("token", "bearer") or not known:
            raise ApiError(401, "Bad credentials")

    def _authenticate_app(self, header: str | None) -> None:
        """Check a GitHub App's JWT: RS256 under the app's key, ``iss`` the app, not expired."""
        scheme, _, offered = (header or "").partition(" ")
        if self.app_id is None or self.app_public_key_pem is None or scheme.lower() != "bearer":
            raise ApiError(401, "A JSON web token could not be decoded")
        claims = verify_app_jwt(offered.strip(), self.app_public_key_pem)
        if claims is None or str(claims.get("iss")) != str(self.app_id):
            raise ApiError(401, "A JSON web token could not be decoded")
        now = datetime.now(UTC).timestamp()
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")

    def _json_body(self, handler: BaseHTTPRequestHandler) -> Json:
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "body too large")
        raw = handler.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            raise ApiError(400, "Problems parsing JSON") from error
        if not isinstance(parsed, dict):
            raise ApiError(400, "Problems parsing JSON")
        return parsed

    def _serve_git(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        pushing = "git-receive-pack" in path or "service=git-receive-pack" in handler.path
        if pushing and not self._basic_auth_ok(handler.headers.get("Authorization")):
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="fake GitHub"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        run_http_backend(handler, self.root, path)

    def _basic_auth_ok(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), self.token.encode())

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            if len(self.exchanges) < MAX_RECORDS:
                self.exchanges.append(exchange)

    # -- helpers -------------------------------------------------------------------

    def _identity(self, login: str) -> Identity:
        return Identity(login, f"{login}@users.noreply.fake-github")

    def _user(self, login: str) -> Json:
        user_id = self._users.setdefault(login, len(self._users) + 1)
        return payloads.user(self.urls, login, user_id)

    def _repository(self) -> Json:
        pushed = self.repo.resolve(self.default_branch)
        pushed_at = self.repo.commit_info(pushed).committer_date if pushed else payloads.EPOCH
        return payloads.repository(
            self.urls, self.repository, 1, self._user(self.owner), self.default_branch, pushed_at
        )

    def _branch_sha(self, branch: str) -> str:
        sha = self.repo.resolve(branch)
        if sha is None:
            raise ApiError(404, f"Branch {branch} not found")
        return sha

    # -- GitHub App ------------------------------------------------------------------

    def _create_installation_token(self, request: _Request) -> tuple[int, Any]:
        if request.params["installation_id"] != str(self.app_installation_id):
            raise ApiError(404, "Not Found")
        token = "ghs_" + uuid.uuid4().hex
        with self._lock:
            self._installation_tokens.add(token)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        return 201, {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"},
            "repository_selection": "selected",
        }

    # -- refs ------------------------------------------------------------------------

    def _get_ref(self, request: _Request) -> tuple[int, Any]:
        ref = "refs/" + request.params["ref"]
        sha = self.repo.resolve(ref)
        if sha is None:
            raise ApiError(404, "Not Found")
        return 200, payloads.git_ref(self.urls, self.repository, ref, sha)

    def _create_ref(self, request: _Request) -> tuple[int, Any]:
        ref, sha = request.body.get("ref"), request.body.get("sha")
        if not isinstance(ref, str) or not isinstance(sha, str):
            raise ApiError(422, 'Invalid request.\n\n"ref" and "sha" are required.')
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, f"{ref} is not a valid ref name.")
        with self.repo.lock:
            if self.repo.resolve_commitish(sha) != sha:
                raise ApiError(422, "Object does not exist")
            try:
                self.repo.update_ref(ref, sha, None)
            except RefConflict as error:
                raise ApiError(422, "Reference already exists") from error
        self._push_webhook(ref, ZERO_SHA, sha)
        return 201, payloads.git_ref(self.urls, self.repository, ref, sha)

    # -- contents --------------------------------------------------------------------

    def _get_contents(self, request: _Request) -> tuple[int, Any]:
        ref = request.query.get("ref") or self.default_branch
        path = request.params["path"].strip("/")
        commit = self.repo.resolve_commitish(ref)
        if commit is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        found = self.repo.read_file(commit, path)
        if found is None:
            raise ApiError(404, "Not Found")
        sha, data = found
        return 200, payloads.content_file(self.urls, self.repository, path, sha, data, ref)

    def _committer(self, body: Json) -> Identity:
        who = body.get("committer") or body.get("author")
        if isinstance(who, dict) and isinstance(who.get("name"), str):
            return Identity(who["name"], str(who.get("email") or ""))
        return self._identity(self.login)

    def _write(self, request: _Request, content: bytes | None) -> tuple[int, Any]:
        path = request.params["path"].strip("/")
        body = request.body
        message = body.get("message")
        if not isinstance(message, str) or not message:
            raise ApiError(422, 'Invalid request.\n\n"message" wasn\'t supplied.')
        branch = str(body.get("branch") or self.default_branch)
        with self.repo.lock:
            parent = self._branch_sha(branch)
            existing = self.repo.read_file(parent, path)
            given = body.get("sha")
            if existing is not None and given is None:
                raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if existing is None and content is None:
                raise ApiError(404, "Not Found")
            if existing is not None and given != existing[0]:
                raise ApiError(409, f"{path} does not match {given}")
            commit = self.repo.commit_files(
                branch,
                {path: content},
                message,
                self._committer(body),
                parent=parent,
                when=_now(),
            )
            blob = None
            if content is not None:
                written = self.repo.read_file(commit, path)
                assert written is not None
                blob = (written[0], len(content))
            info = self.repo.commit_info(commit)
        self._push_webhook(f"refs/heads/{branch}", parent, commit)
        status = 201 if existing is None else 200
        return status, payloads.file_commit(self.urls, self.repository, path, blob, info, branch)

    def _put_contents(self, request: _Request) -> tuple[int, Any]:
        encoded = request.body.get("content")
        if not isinstance(encoded, str):
            raise ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.')
        try:
            content = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise ApiError(422, "content is not valid Base64") from error
        return self._write(request, content)

    def _delete_contents(self, request: _Request) -> tuple[int, Any]:
        if request.body.get("sha") is None:
            raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        return self._write(request, None)

    # -- pull requests ---------------------------------------------------------------

    def _pull_json(self, pr: PullRequestRecord, *, simple: bool = False) -> Json:
        head_sha = pr.frozen_head_sha or self.repo.resolve(pr.head) or ZERO_SHA
        base_sha = self.repo.resolve(pr.base) or ZERO_SHA
        live = pr.state == "open" and head_sha != ZERO_SHA and base_sha != ZERO_SHA
        commits = additions = deletions = files = 0
        mergeable: bool | None = None
        if live:
            commits = self.repo.ahead_of(base_sha, head_sha)
            additions, deletions, files = self.repo.diff_stat(base_sha, head_sha)
            mergeable = self._mergeable(base_sha, head_sha)
        users = {login: self._user(login) for login in {pr.user, pr.merged_by or pr.user}}
        context = payloads.PullContext(
            urls=self.urls,
            full_name=self.repository,
            repo=self._repository(),
            users=users,
            head_sha=head_sha,
            base_sha=base_sha,
            commits=commits,
            additions=additions,
            deletions=deletions,
            changed_files=files,
            mergeable=mergeable,
        )
        return payloads.pull_request(pr, context, simple=simple)

    def _mergeable(self, base_sha: str, head_sha: str) -> bool:
        completed = self.repo._git(
            "merge-tree", "--write-tree", "--no-messages", base_sha, head_sha, ok=(0, 1)
        )
        return completed.returncode == 0

    def _number(self, request: _Request) -> PullRequestRecord:
        try:
            number = int(request.params["pull_number"])
        except ValueError as error:
            raise ApiError(404, "Not Found") from error
        with self._lock:
            pr = self._pulls.get(number)
        if pr is None:
            raise ApiError(404, "Not Found")
        return pr

    def _head_branch(self, head: str) -> str:
        owner, _, branch = head.rpartition(":")
        if owner and owner != self.owner:
            return ""  # forks are not modelled
        return branch

    def _list_pulls(self, request: _Request) -> tuple[int, Any]:
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise ApiError(422, "Validation Failed", [{"field": "state", "code": "invalid"}])
        head = self._head_branch(request.query["head"]) if "head" in request.query else None
        base = request.query.get("base")
        with self._lock:
            found = [
                pr
                for pr in reversed(self._pulls.values())
                if (state == "all" or pr.state == state)
                and (head is None or pr.head == head)
                and (base is None or pr.base == base)
            ]
        return 200, [self._pull_json(pr, simple=True) for pr in found]

    def _create_pull(self, request: _Request) -> tuple[int, Any]:
        body = request.body
        title, head, base = body.get("title"), body.get("head"), body.get("base")
        if not isinstance(head, str) or not isinstance(base, str) or not isinstance(title, str):
            raise ApiError(
                422,
                "Validation Failed",
                [{"resource": "PullRequest", "code": "missing_field", "field": "title"}],
            )
        branch = self._head_branch(head)
        with self._lock:
            if not branch or self.repo.resolve(branch) is None:
                errors = [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
                raise ApiError(422, "Validation Failed", errors)
            if self.repo.resolve(base) is None:
                errors = [{"resource": "PullRequest", "field": "base", "code": "invalid"}]
                raise ApiError(422, "Validation Failed", errors)
            for pr in self._pulls.values():
                if pr.state == "open" and pr.head == branch and pr.base == base:
                    message = f"A pull request already exists for {self.owner}:{branch}."
                    raise ApiError(
                        422,
                        "Validation Failed",
                        [{"resource": "PullRequest", "code": "custom", "message": message}],
                    )
            base_sha, head_sha = self._branch_sha(base), self._branch_sha(branch)
            if self.repo.ahead_of(base_sha, head_sha) == 0:
                message = f"No commits between {base} and {branch}"
                errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
                raise ApiError(422, "Validation Failed", errors)
            if len(self._pulls) >= MAX_PULLS:
                raise ApiError(
                    422, "Validation Failed", [{"code": "custom", "message": "too many"}]
                )
            now = _now()
            pr = PullRequestRecord(
                number=len(self._pulls) + 1,
                title=title,
                body=body.get("body") if isinstance(body.get("body"), str) else None,
                head=branch,
                base=base,
                user=self.login,
                created_at=now,
                updated_at=now,
                draft=bool(body.get("draft", False)),
            )
            self._pulls[pr.number] = pr
            answer = self._pull_json(pr)
        self._pull_webhook("opened", pr, self.login)
        return 201, answer

    def _get_pull(self, request: _Request) -> tuple[int, Any]:
        pr = self._number(request)
        with self._lock:
            return 200, self._pull_json(pr)

    def _update_pull(self, request: _Request) -> tuple[int, Any]:
        pr = self._number(request)
        body = request.body
        with self._lock:
            if isinstance(body.get("title"), str):
                pr.title = body["title"]
            if "body" in body and (body["body"] is None or isinstance(body["body"], str)):
                pr.body = body["body"]
            pr.updated_at = _now()
        state = body.get("state")
        if state in ("open", "closed") and state != pr.state:
            self._set_state(pr.number, state, by=self.login)
        elif state not in (None, "open", "closed"):
            raise ApiError(422, "Validation Failed", [{"field": "state", "code": "invalid"}])
        with self._lock:
            return 200, self._pull_json(pr)

    def _set_state(self, number: int, state: str, *, by: str) -> None:
        with self._lock:
            pr = self._pulls[number]
            if pr.merged:
                raise ApiError(422, "Validation Failed", [{"code": "custom", "message": "merged"}])
            now = _now()
            pr.state, pr.updated_at = state, now
            if state == "closed":
                pr.closed_at = now
                pr.frozen_head_sha = self.repo.resolve(pr.head)
            else:
                pr.closed_at = pr.frozen_head_sha = None
        self._pull_webhook("closed" if state == "closed" else "reopened", pr, by)

    def _merge_pull(self, request: _Request) -> tuple[int, Any]:
        pr = self._number(request)
        method = request.body.get("merge_method", "merge")
        if method != "merge":
            raise ApiError(422, "Validation Failed", [{"field": "merge_method", "code": "invalid"}])
        title = request.body.get("commit_title")
        sha = request.body.get("sha")
        merged = self._merge(
            pr.number,
            by=self.login,
            expected_sha=sha if isinstance(sha, str) else None,
            title=title if isinstance(title, str) else None,
        )
        return 200, {"sha": merged, "merged": True, "message": "Pull Request successfully merged"}

    def _merge(self, number: int, *, by: str, expected_sha: str | None, title: str | None) -> str:
        with self._lock, self.repo.lock:
            pr = self._pulls[number]
            if pr.state != "open":
                raise ApiError(405, "Pull Request is not mergeable")
            head_sha = self._branch_sha(pr.head)
            if expected_sha is not None and expected_sha != head_sha:
                raise ApiError(409, "Head branch was modified. Review and try the merge again.")
            before = self._branch_sha(pr.base)
            message = title or f"Merge pull request #{pr.number} from {self.owner}/{pr.head}"
            message += f"\n\n{pr.title}"
            try:
                merge_sha = self.repo.merge(
                    pr.base, pr.head, message, self._identity(by), when=_now()
                )
            except (MergeConflict, RefConflict) as error:
                raise ApiError(405, "Pull Request is not mergeable") from error
            now = _now()
            pr.state, pr.merged, pr.merged_by = "closed", True, by
            pr.merged_at = pr.closed_at = pr.updated_at = now
            pr.merge_commit_sha, pr.frozen_head_sha = merge_sha, head_sha
        self._pull_webhook("closed", pr, by)
        self._push_webhook(f"refs/heads/{pr.base}", before, merge_sha)
        return merge_sha

    # -- webhooks --------------------------------------------------------------------

    def _pull_webhook(self, action: str, pr: PullRequestRecord, by: str) -> None:
        with self._lock:
            payload = {
                "action": action,
                "number": pr.number,
                "pull_request": self._pull_json(pr),
                "repository": self._repository(),
                "sender": self._user(by),
            }
        self._enqueue("pull_request", payload)

    def _push_webhook(self, ref: str, before: str, after: str) -> None:
        commits = []
        for sha in self.repo.commits_between(before, after)[-20:]:
            info = self.repo.commit_info(sha)
            changes = self.repo.changes(sha)
            commits.append(payloads.push_commit(self.urls, self.repository, info, changes))
        base_ref = None
        if before == ZERO_SHA and ref != f"refs/heads/{self.default_branch}":
            base_ref = f"refs/heads/{self.default_branch}"
        payload = {
            "ref": ref,
            "before": before,
            "after": after,
            "created": before == ZERO_SHA,
            "deleted": False,
            "forced": False,
            "base_ref": base_ref,
            "compare": f"{self.url}/{self.repository}/compare/{before[:12]}...{after[:12]}",
            "commits": commits,
            "head_commit": commits[-1] if commits else None,
            "repository": self._repository(),
            "pusher": {"name": self.login, "email": self._identity(self.login).email},
            "sender": self._user(self.login),
        }
        self._enqueue("push", payload)

    def _enqueue(self, event: str, payload: Json) -> None:
        delivery = WebhookDelivery(event, str(uuid.uuid4()), payload)
        with self._lock:
            if len(self.deliveries) < MAX_RECORDS:
                self.deliveries.append(delivery)
        if self.send_webhooks and self.webhook_url:
            self._outbox.put(delivery)

    def _send(self) -> None:
        while True:
            delivery = self._outbox.get()
            if delivery is None:
                return
            body = json.dumps(delivery.payload).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/fake",
                "X-GitHub-Event": delivery.event,
                "X-GitHub-Delivery": delivery.delivery_id,
                "X-GitHub-Hook-ID": "1",
                "X-GitHub-Hook-Installation-Target-ID": "1",
                "X-GitHub-Hook-Installation-Target-Type": "repository",
            }
            if self.webhook_secret:
                headers["X-Hub-Signature-256"] = sign(self.webhook_secret, body)
            assert self.webhook_url is not None
            request = urllib.request.Request(self.webhook_url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    delivery.status = answer.status
            except urllib.error.HTTPError as error:
                delivery.status, delivery.error = error.code, error.read()[:500].decode("replace")
            except OSError as error:
                delivery.error = str(error)
            delivery.sent = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        self.server.fake.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)
