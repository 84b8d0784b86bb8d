"""The GitOps workers' contract: a change to manifests as a pull request, and its state.

A workflow that must not change the cluster behind git's back asks ``gitops.open_pull_request``
to write its change into the configuration repository as a pull request, then waits for the
merge (the GitHub webhook signals it; ``gitops.read_pull_request`` is the polling fallback).
See docs/gitops.md.

The branch is derived from the workflow ID and the step key only
(:func:`branch_name`), so every retry of one step finds the branch and the pull request
the first attempt made instead of opening a second one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.limits import (
    MAX_ENTRIES,
    MAX_MANIFEST_BYTES,
    MAX_NAME,
    MAX_TEXT,
    MAX_URL,
    check_json_size,
)
from models.operator import parse_workflow_id

#: The kinds the GitOps layer writes (the mesh objects and the Deployment's image).
ManifestKind = Literal["VirtualService", "DestinationRule", "AuthorizationPolicy", "Deployment"]
MANIFEST_KINDS: tuple[str, ...] = get_args(ManifestKind)

#: Every branch Autopilot opens starts with this word, as the GitHub webhook expects.
BRANCH_PREFIX = "autopilot"
#: Longest branch name written for names of usual length (the target's own names may add).
MAX_BRANCH = 200

_NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_FILE = r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*\.ya?ml$"
#: What a ref component may not hold: anything but these, and ".." (git check-ref-format).
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+|\.{2,}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _relative_file(value: str | None) -> str | None:
    if value is not None and (".." in value.split("/") or value.startswith("/")):
        raise ValueError("must be a path inside the configured directory (no '..', no '/')")
    return value


class PutManifest(_Model):
    """Write this whole object (a VirtualService, DestinationRule or AuthorizationPolicy)."""

    op: Literal["put"] = "put"
    manifest: dict[str, Any] = Field(description="the object as kubectl would apply it")
    file: str | None = Field(
        default=None,
        max_length=MAX_NAME,
        pattern=_FILE,
        description="file under the configured path; default <namespace>/<kind>-<name>.yaml",
    )

    _file_inside = field_validator("file")(_relative_file)

    @model_validator(mode="after")
    def _names_an_object(self) -> PutManifest:
        check_json_size(self, MAX_MANIFEST_BYTES, "a manifest")
        metadata = self.manifest.get("metadata")
        if not isinstance(self.manifest.get("apiVersion"), str):
            raise ValueError("manifest.apiVersion: a string is required")
        if self.manifest.get("kind") not in MANIFEST_KINDS:
            raise ValueError(f"manifest.kind: one of {', '.join(MANIFEST_KINDS)}")
        if not isinstance(metadata, dict):
            raise ValueError("manifest.metadata: an object with name and namespace is required")
        for key, pattern in (("name", _NAME), ("namespace", _NAMESPACE)):
            value = metadata.get(key)
            if not isinstance(value, str) or not re.fullmatch(pattern, value):
                raise ValueError(f"manifest.metadata.{key}: a Kubernetes name is required")
        return self

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


class RemoveManifest(_Model):
    """Remove the file of this object (the GitOps engine then prunes it from the cluster)."""

    op: Literal["remove"] = "remove"
    kind: ManifestKind
    namespace: str = Field(min_length=1, max_length=63, pattern=_NAMESPACE)
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME)
    file: str | None = Field(default=None, max_length=MAX_NAME, pattern=_FILE)

    _file_inside = field_validator("file")(_relative_file)


class SetImage(_Model):
    """Set one container's image of a Deployment already in the repository."""

    op: Literal["set-image"] = "set-image"
    namespace: str = Field(min_length=1, max_length=63, pattern=_NAMESPACE)
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME)
    container: str = Field(min_length=1, max_length=63, pattern=_NAMESPACE)
    image: str = Field(min_length=1, max_length=MAX_URL, pattern=r"^[^\s]+$")
    file: str | None = Field(default=None, max_length=MAX_NAME, pattern=_FILE)

    _file_inside = field_validator("file")(_relative_file)

    @property
    def kind(self) -> str:
        return "Deployment"


#: One change to the configuration repository.
ManifestChange = Annotated[PutManifest | RemoveManifest | SetImage, Field(discriminator="op")]


class PullRequestChange(_Model):
    """The argument of ``gitops.open_pull_request``: what to change, why, and for whom.

    ``workflow_id`` and ``step_key`` name the branch; pass the step's own key
    (``StepInput.step_key``) so a retried step finds its branch and pull request.
    """

    workflow_id: str = Field(min_length=1, max_length=3 * MAX_NAME)
    step_key: str = Field(min_length=1, max_length=MAX_NAME)
    title: str = Field(min_length=1, max_length=256, description="the pull request's title")
    why: str = Field(min_length=1, max_length=MAX_TEXT, description="why, for the reviewer")
    changes: list[ManifestChange] = Field(min_length=1, max_length=MAX_ENTRIES)

    @field_validator("workflow_id")
    @classmethod
    def _is_a_workflow_id(cls, value: str) -> str:
        parse_workflow_id(value)
        return value

    @property
    def branch(self) -> str:
        return branch_name(self.workflow_id, self.step_key)


class PullRequestOpened(_Model):
    """What ``gitops.open_pull_request`` did.

    ``opened``: this call opened it; ``found``: an earlier attempt had (a retry);
    ``unchanged``: the base branch already holds the change, so there is nothing to review
    (no pull request, ``number`` is None).
    """

    outcome: Literal["opened", "found", "unchanged"]
    number: int | None = Field(default=None, ge=1)
    url: str | None = Field(default=None, max_length=MAX_URL)
    branch: str = Field(max_length=4 * MAX_NAME)
    head_sha: str | None = Field(default=None, max_length=64)
    files: list[str] = Field(default_factory=list, max_length=2 * MAX_ENTRIES)


class PullRequestRef(_Model):
    """The argument of ``gitops.read_pull_request``."""

    number: int = Field(ge=1)


class PullRequestState(_Model):
    """A pull request as the polling fallback sees it."""

    number: int = Field(ge=1)
    state: Literal["open", "merged", "closed"]
    merge_sha: str | None = Field(default=None, max_length=64, description="when merged")
    head_sha: str | None = Field(default=None, max_length=64)
    url: str = Field(default="", max_length=MAX_URL)


def branch_name(workflow_id: str, step_key: str) -> str:
    """``autopilot/<operator>/<namespace>/<name>/<step>-<hash>``: the same for every retry.

    The readable part of the step is cut to what a ref may hold; the hash (of the workflow
    ID and the whole step key) keeps two steps apart whatever the cut removed.
    """
    operator, namespace, name = parse_workflow_id(workflow_id)
    digest = hashlib.sha256(f"{workflow_id}\n{step_key}".encode()).hexdigest()[:12]
    readable = _REF_UNSAFE.sub("-", "-".join(step_key.split(":")[-2:])).strip("-.") or "step"
    stem = f"{BRANCH_PREFIX}/{operator}/{namespace}/{name}/"
    room = max(1, MAX_BRANCH - len(stem) - len(digest) - 1)
    return f"{stem}{readable[:room].rstrip('-.')}-{digest}"
