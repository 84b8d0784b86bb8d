"""Read-only views of the two kinds of object the Kubernetes watcher cares about.

The watcher receives raw JSON (parsing into the client's models costs more than the whole
decision), so these small frozen views pull out exactly what the decisions need: which
Deployment a ``Canary`` targets, what the watcher already delivered for it (its status), and
the revision of a Deployment's pod template, hashed exactly as the canary workers hash it
(:func:`models.revisions.pod_template_revision`), so the workflow can tell a replay from a new
revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from models.canary_watch import CANARY_FINALIZER, METRIC_SAMPLES_ANNOTATION, CanaryStatus
from models.operator import workflow_id
from models.revisions import pod_template_revision

#: The workflow type (operator name) every Canary drives.
OPERATOR = "canary"

Key = tuple[str, str]
"""``(namespace, name)`` of an object."""


def _metadata(raw: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = raw.get("metadata") or {}
    return metadata


def key_of(raw: dict[str, Any]) -> Key:
    """``(namespace, name)`` of a raw object."""
    metadata = _metadata(raw)
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def resource_version(raw: dict[str, Any]) -> str:
    """The object's ``metadata.resourceVersion`` ('' when absent)."""
    return str(_metadata(raw).get("resourceVersion") or "")


@dataclass(frozen=True)
class CanaryObject:
    """A ``Canary`` as the watcher sees it."""

    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    spec: dict[str, Any]
    status: CanaryStatus
    annotations: dict[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> CanaryObject:
        """Build the view from the API server's JSON."""
        metadata = _metadata(raw)
        try:
            status = CanaryStatus.model_validate(raw.get("status") or {})
        except ValidationError:
            status = CanaryStatus()  # someone else wrote it; we rewrite what we own
        return cls(
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            uid=str(metadata.get("uid") or ""),
            generation=int(metadata.get("generation") or 0),
            resource_version=str(metadata.get("resourceVersion") or ""),
            spec=dict(raw.get("spec") or {}),
            status=status,
            annotations=dict(metadata.get("annotations") or {}),
            finalizers=tuple(metadata.get("finalizers") or ()),
            deleting=bool(metadata.get("deletionTimestamp")),
        )

    @property
    def key(self) -> Key:
        """``(namespace, name)`` of the Canary."""
        return self.namespace, self.name

    @property
    def target_name(self) -> str:
        """The Deployment it targets (``spec.targetRef.name``), '' if unset."""
        target = self.spec.get("targetRef") or {}
        return str(target.get("name") or "") if isinstance(target, dict) else ""

    @property
    def target_key(self) -> Key:
        """``(namespace, deployment)`` of the target."""
        return self.namespace, self.target_name

    @property
    def workflow_id(self) -> str:
        """``canary/<namespace>/<deployment>``: one workflow per Deployment."""
        return workflow_id(OPERATOR, self.namespace, self.target_name)

    @property
    def has_finalizer(self) -> bool:
        """Whether our finalizer is on the object."""
        return CANARY_FINALIZER in self.finalizers

    @property
    def wants_metric_samples(self) -> bool:
        """Opted in to samples from the Prometheus watcher (annotation set to "true")."""
        return self.annotations.get(METRIC_SAMPLES_ANNOTATION, "").strip().lower() == "true"


@dataclass(frozen=True)
class DeploymentState:
    """What the watcher knows of a target Deployment."""

    namespace: str
    name: str
    uid: str
    generation: int
    revision: str

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> DeploymentState:
        """Build the state from the API server's JSON (revision = pod-template hash)."""
        metadata = _metadata(raw)
        template = (raw.get("spec") or {}).get("template") or {}
        return cls(
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            uid=str(metadata.get("uid") or ""),
            generation=int(metadata.get("generation") or 0),
            revision=pod_template_revision(template),
        )

    @property
    def key(self) -> Key:
        """``(namespace, name)`` of the Deployment."""
        return self.namespace, self.name


class Absent:
    """The Deployment is known not to exist (a singleton: :data:`ABSENT`)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
