"""``POST /v1/github``: GitHub ``push`` and ``pull_request`` webhooks to operator events.

* ``push`` to the repository's default branch: every file added or modified under the
  services prefix (``services/`` by default) at ``services/<namespace>/<name>.yaml`` (or
  ``.yml``) becomes ``ServiceCheckedIn`` for the autoroute operator, delivered with
  signal-with-start (spec ``{}``), so checking a service in creates its route. A file whose
  last change in the push is a removal becomes ``ServiceCheckedOut``, delivered as a signal
  only (it never starts a workflow), so removing a service's file removes its route. A file
  touched by several commits of one push is one event. Other paths and branches are ignored.
* ``pull_request``: a PR names its operator instance by a label or by its head branch,
  ``autopilot/<operator>/<namespace>/<name>`` (labels first, then the branch; each distinct
  instance gets one event). A branch may have a fifth part, the step that opened it
  (``.../<name>/<step>-<hash>``, as ``models.gitops.branch_name`` writes it). ``closed``
  and merged becomes ``PullRequestMerged``,
  ``closed`` unmerged becomes ``PullRequestClosed``, ``opened``/``reopened`` becomes
  ``PullRequestOpened``. These only signal: the workflow that opened the PR is waiting.
* ``ping`` answers 200.

Event IDs are ``github:<X-GitHub-Delivery>:<index>``: GitHub keeps the delivery GUID when a
delivery is redelivered, so a redelivery carries the same IDs and moves nothing twice.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.operator import OPERATOR_NAME_PATTERN, EventEnvelope, Target
from service.settings import WebhookSettings
from watchers.delivery import DeliveryRequest
from watchers.webhooks.routing import Ignored, Routed, describe, make_target

#: ``EventEnvelope.source`` of events from this endpoint.
SOURCE = "webhook/github"
SERVICE_EVENT = "ServiceCheckedIn"
REMOVED_SERVICE_EVENT = "ServiceCheckedOut"
MERGED_EVENT = "PullRequestMerged"
CLOSED_EVENT = "PullRequestClosed"
OPENED_EVENT = "PullRequestOpened"
#: Pull-request names start with this word: ``autopilot/<operator>/<namespace>/<name>``.
PR_NAME_PREFIX = "autopilot"
SERVICE_SUFFIXES = (".yaml", ".yml")

#: The ``X-GitHub-Event`` values this endpoint understands.
SUPPORTED_EVENTS = ("ping", "push", "pull_request")
DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,64}")

_OPERATOR = re.compile(OPERATOR_NAME_PATTERN)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Repository(_Lenient):
    """The repository a webhook is about."""

    full_name: str
    default_branch: str = "main"


class PushCommit(_Lenient):
    """One commit of a push, with the paths it touched."""

    id: str
    added: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class PushEvent(_Lenient):
    """The body of a ``push`` webhook."""

    ref: str
    after: str
    deleted: bool = False
    repository: Repository
    commits: list[PushCommit] = Field(default_factory=list)
    compare: str = ""


class Label(_Lenient):
    """A pull-request label."""

    name: str


class BranchRef(_Lenient):
    """The head or base of a pull request."""

    ref: str
    sha: str = ""


class PullRequest(_Lenient):
    """The pull request inside a ``pull_request`` webhook."""

    number: int
    title: str = ""
    html_url: str = ""
    merged: bool = False
    merge_commit_sha: str | None = None
    head: BranchRef
    base: BranchRef
    labels: list[Label] = Field(default_factory=list)


class Sender(_Lenient):
    """Who did what a webhook reports (merged, closed)."""

    login: str = ""


class PullRequestEvent(_Lenient):
    """The body of a ``pull_request`` webhook."""

    action: str
    pull_request: PullRequest
    repository: Repository
    sender: Sender | None = None


class PingEvent(_Lenient):
    """The body of the ``ping`` GitHub sends when a webhook is created."""

    zen: str = ""
    hook_id: int | None = None


def service_target(path: str, prefix: str) -> Target | str:
    """The target a service file names, or why the path names none.

    ``services/shop/cart.yaml`` names namespace ``shop``, name ``cart``.
    """
    if not path.startswith(prefix):
        return f"not under {prefix}"
    parts = path[len(prefix) :].split("/")
    stem, suffix = posixpath.splitext(parts[-1])
    if len(parts) != 2 or suffix not in SERVICE_SUFFIXES:
        return f"not {prefix}<namespace>/<name>.yaml"
    target = make_target(parts[0], stem)
    return target if isinstance(target, Target) else f"no valid target: {describe(target)}"


def route_push(
    push: PushEvent, delivery_id: str, settings: WebhookSettings, now: datetime | None = None
) -> Routed:
    """Map a push to one event per service file: checked in (added, modified) or out (removed)."""
    routed = Routed()
    if settings.github_operator is None:
        reason = "no operator takes pushes (none declares the github watcher)"
        routed.ignored.append(Ignored(push.ref, reason))
        return routed
    branch = f"refs/heads/{push.repository.default_branch}"
    if push.deleted or push.ref != branch:
        reason = "branch deleted" if push.deleted else f"not the default branch {branch}"
        routed.ignored.append(Ignored(push.ref, reason))
        return routed
    # The last change in the push wins: added then removed is gone, removed then added is back.
    changes: dict[str, tuple[str, str]] = {}
    for commit in push.commits:
        for change, paths in (
            ("added", commit.added),
            ("modified", commit.modified),
            ("removed", commit.removed),
        ):
            for path in paths:
                # A file added and then modified in the same push is still new.
                added_before = changes.get(path, ("",))[0] == "added"
                kept = "added" if change == "modified" and added_before else change
                changes[path] = (kept, commit.id)
    now = now or datetime.now(UTC)
    index = 0
    for path, (change, commit_id) in changes.items():
        if not path.startswith(settings.github_services_prefix):
            continue
        target = service_target(path, settings.github_services_prefix)
        if isinstance(target, str):
            routed.ignored.append(Ignored(path, target))
            continue
        payload: dict[str, Any] = {
            "path": path,
            "change": change,
            "repository": push.repository.full_name,
            "ref": push.ref,
            "commit": commit_id,
            "after": push.after,
            "compare": push.compare,
        }
        removed = change == "removed"
        envelope = EventEnvelope(
            id=f"github:{delivery_id}:{index}",
            type=REMOVED_SERVICE_EVENT if removed else SERVICE_EVENT,
            payload=payload,
            source=SOURCE,
            observed_at=now,
        )
        start: dict[str, Any] | None = None if removed else {}
        routed.requests.append(DeliveryRequest(settings.github_operator, target, envelope, start))
        index += 1
    return routed


@dataclass(frozen=True)
class NamedInstance:
    """An operator instance a pull request names, and where the name was found."""

    operator: str
    target: Target
    found_in: Literal["label", "branch"]


def parse_instance_name(value: str) -> tuple[str, Target] | str:
    """Read ``autopilot/<operator>/<namespace>/<name>[/<step>]``, or say why it is not one.

    The optional fifth part is the step of a GitOps worker's branch; it names no instance.
    """
    parts = value.strip().split("/")
    if len(parts) not in (4, 5) or parts[0] != PR_NAME_PREFIX or (len(parts) == 5 and not parts[4]):
        return f"not {PR_NAME_PREFIX}/<operator>/<namespace>/<name>[/<step>]"
    operator = parts[1]
    if not _OPERATOR.fullmatch(operator):
        return f"operator {operator!r} is not an operator name"
    target = make_target(parts[2], parts[3])
    if isinstance(target, list):
        return f"no valid target: {describe(target)}"
    return operator, target


def named_instances(pr: PullRequest) -> tuple[list[NamedInstance], list[Ignored]]:
    """The distinct instances a PR names by label (first) or head branch."""
    found: dict[tuple[str, str, str], NamedInstance] = {}
    ignored: list[Ignored] = []
    candidates: list[tuple[str, Literal["label", "branch"]]] = [
        (label.name, "label") for label in pr.labels
    ]
    candidates.append((pr.head.ref, "branch"))
    for value, found_in in candidates:
        if not value.startswith(f"{PR_NAME_PREFIX}/"):
            continue
        parsed = parse_instance_name(value)
        if isinstance(parsed, str):
            ignored.append(Ignored(f"{found_in} {value}", parsed))
            continue
        operator, target = parsed
        key = (operator, target.namespace, target.name)
        found.setdefault(key, NamedInstance(operator, target, found_in))
    return list(found.values()), ignored


def pull_request_event_type(event: PullRequestEvent) -> str | None:
    """The Autopilot event for a PR action, or ``None`` for actions we ignore."""
    if event.action == "closed":
        return MERGED_EVENT if event.pull_request.merged else CLOSED_EVENT
    if event.action in ("opened", "reopened"):
        return OPENED_EVENT
    return None


def route_pull_request(
    event: PullRequestEvent, delivery_id: str, now: datetime | None = None
) -> Routed:
    """Map a PR event to one signal per operator instance the PR names."""
    routed = Routed()
    pr = event.pull_request
    event_type = pull_request_event_type(event)
    if event_type is None:
        routed.ignored.append(Ignored(f"#{pr.number}", f"action {event.action!r} moves nothing"))
        return routed
    instances, routed.ignored = named_instances(pr)
    if not instances:
        routed.ignored.append(
            Ignored(f"#{pr.number}", f"no label or branch {PR_NAME_PREFIX}/<operator>/<ns>/<name>")
        )
    now = now or datetime.now(UTC)
    for index, instance in enumerate(instances):
        payload: dict[str, Any] = {
            "number": pr.number,
            "title": pr.title,
            "url": pr.html_url,
            "action": event.action,
            "merged": pr.merged,
            "merge_commit_sha": pr.merge_commit_sha,
            "head_ref": pr.head.ref,
            "head_sha": pr.head.sha,
            "base_ref": pr.base.ref,
            "repository": event.repository.full_name,
            "named_by": instance.found_in,
            "sender": event.sender.login if event.sender else "",
        }
        envelope = EventEnvelope(
            id=f"github:{delivery_id}:{index}",
            type=event_type,
            payload=payload,
            source=SOURCE,
            observed_at=now,
        )
        routed.requests.append(DeliveryRequest(instance.operator, instance.target, envelope))
    return routed
