"""What the canary's companion resources (``MetricTemplate``, ``AlertProvider``) share.

Why a module of its own: both are Flagger kinds a ``Canary`` refers to by name
(``templateRef``, ``providerRef``), both are loaded the same way from a manifest of
``autopilot.dev/v1alpha1`` or Flagger's ``flagger.app/v1beta1`` (to ease the move, as a
``Canary`` is), and both name every problem by its field path, as the canary spec does.
Pure data, like the rest of ``models/``: the activities read the objects, this says what
they mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from models.canary_watch import CANARY_GROUP, CANARY_VERSION
from models.errors import path_problems
from models.limits import MAX_LABEL, MAX_NAME

#: Flagger's API version, accepted beside ours for every kind of the canary.
FLAGGER_API_VERSION = "flagger.app/v1beta1"
#: Our API version of the companion kinds (the ``Canary``'s).
API_VERSION = f"{CANARY_GROUP}/{CANARY_VERSION}"
#: The API versions a manifest of these kinds may have.
ACCEPTED_API_VERSIONS = (API_VERSION, FLAGGER_API_VERSION)


class FlaggerModel(BaseModel):
    """Base of the companion specs: camelCase names (Flagger's), unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class ObjectRef(FlaggerModel):
    """A reference to a resource by name, in the canary's namespace unless one is given.

    Flagger's ``templateRef`` and ``providerRef``: ``namespace`` lets a platform team keep
    shared templates and providers in one namespace for every team's canaries.
    """

    name: str = Field(min_length=1, max_length=MAX_NAME)
    namespace: str | None = Field(
        default=None,
        max_length=MAX_LABEL,
        description="namespace of the resource; defaults to the canary's",
    )

    def key(self, namespace: str) -> str:
        """``namespace/name`` of the resource, for a canary in ``namespace``."""
        return f"{self.namespace or namespace}/{self.name}"


class SecretRef(FlaggerModel):
    """A Secret in the resource's own namespace (Kubernetes' LocalObjectReference)."""

    name: str = Field(min_length=1, max_length=MAX_NAME)


class ResourceError(ValueError):
    """A companion resource that does not load; one ``path: problem`` line per problem."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        self.kind = kind
        self.problems = problems
        super().__init__(f"invalid {kind}:\n" + "\n".join(f"  {p}" for p in problems))


Spec = TypeVar("Spec", bound=BaseModel)


def load_resource(source: Mapping[str, Any], kind: str, model: type[Spec]) -> Spec:
    """The spec of a ``kind`` manifest (ours or Flagger's), or of a bare spec mapping.

    Raises:
        ResourceError: every problem, each naming its field path.
    """
    prefix = ""
    data: Any = source
    if "kind" in source or "apiVersion" in source:
        if source.get("kind") != kind or source.get("apiVersion") not in ACCEPTED_API_VERSIONS:
            raise ResourceError(
                kind,
                [
                    f"kind: expected {kind} of {API_VERSION} (or {FLAGGER_API_VERSION}), got "
                    f"{source.get('kind')} of {source.get('apiVersion')}"
                ],
            )
        data, prefix = source.get("spec"), "spec"
    if not isinstance(data, Mapping):
        raise ResourceError(kind, [f"{prefix or '(document)'}: expected a mapping"])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ResourceError(kind, path_problems(error, prefix)) from error
