"""Render manifest changes into the files of the configuration repository (no I/O here).

Two layouts, chosen by ``gitops.layout`` (docs/gitops.md):

* ``plain``: each object is ``<path>/<namespace>/<kind>-<name>.yaml`` (lower-case kind);
  a Deployment's image is set in its own file;
* ``kustomize``: the same files, listed in ``resources:`` of ``<path>/kustomization.yaml``
  (an overlay), and images set through that file's ``images:`` field (``name`` is the image
  without its tag, ``newTag`` or ``digest`` the pin), which is how an overlay overrides a
  base it does not own.

:func:`render` reads what it needs through a callback (the branch's current text of a
file), so the same pure code serves the first attempt and every retry: a retry reads its
own earlier commits and renders the same bytes, so nothing is written twice.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import yaml

from models.gitops import ManifestChange, PutManifest, RemoveManifest, SetImage

#: Reads a repository file's text on the working branch (None: no such file).
Reader = Callable[[str], str | None]


class RenderError(ValueError):
    """The change cannot be rendered into this repository (the message says why)."""


def object_file(path: str, change: ManifestChange) -> str:
    """The repository path of the object a change is about."""
    relative = change.file or f"{change.namespace}/{change.kind.lower()}-{change.name}.yaml"
    return posixpath.normpath(posixpath.join(path, relative))


def dump(document: Any) -> str:
    """YAML as a reviewer wants to read it: keys in the given order, block style."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def render(
    changes: list[ManifestChange], *, path: str, layout: str, read: Reader
) -> dict[str, str | None]:
    """The files to write (text) or remove (None), in a stable order.

    Raises:
        RenderError: A Deployment to re-image is not in the repository, or has no such
            container; a kustomization is not a mapping.
    """
    files: dict[str, str | None] = {}

    def current(name: str) -> str | None:
        return files[name] if name in files else read(name)

    kustomization_file = posixpath.join(path, "kustomization.yaml")
    kustomization: dict[str, Any] | None = None
    if layout == "kustomize":
        kustomization = _load_mapping(current(kustomization_file), kustomization_file)
    for change in changes:
        target = object_file(path, change)
        relative = posixpath.relpath(target, path)
        if isinstance(change, PutManifest):
            files[target] = dump(change.manifest)
            if kustomization is not None:
                _add_resource(kustomization, relative)
        elif isinstance(change, RemoveManifest):
            files[target] = None
            if kustomization is not None:
                _remove_resource(kustomization, relative)
        elif kustomization is not None:
            _set_kustomize_image(kustomization, change.image)
        else:
            files[target] = _set_deployment_image(current(target), target, change)
    if kustomization is not None:
        files[kustomization_file] = dump(kustomization)
    return files


def _load_mapping(text: str | None, name: str) -> dict[str, Any]:
    if text is None:
        return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise RenderError(f"{name} is not a YAML mapping")
    return loaded


def _add_resource(kustomization: dict[str, Any], relative: str) -> None:
    resources = kustomization.setdefault("resources", [])
    if relative not in resources:
        resources.append(relative)


def _remove_resource(kustomization: dict[str, Any], relative: str) -> None:
    resources = kustomization.get("resources") or []
    kustomization["resources"] = [item for item in resources if item != relative]


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``repo/name:tag@sha256:...`` as name, tag and digest."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _set_kustomize_image(kustomization: dict[str, Any], image: str) -> None:
    name, tag, digest = split_image(image)
    entry: dict[str, Any] = {"name": name}
    if digest:
        entry["digest"] = digest
    elif tag:
        entry["newTag"] = tag
    images = [item for item in kustomization.get("images") or [] if item.get("name") != name]
    kustomization["images"] = [*images, entry]


def _set_deployment_image(text: str | None, file: str, change: SetImage) -> str:
    if text is None:
        raise RenderError(
            f"Deployment {change.namespace}/{change.name} is not in the repository at {file}"
        )
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != "Deployment":
            continue
        if (document.get("metadata") or {}).get("name") != change.name:
            continue
        containers = (((document.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        for container in containers:
            if isinstance(container, dict) and container.get("name") == change.container:
                if container.get("image") == change.image:
                    return text  # already so: keep the file byte for byte
                container["image"] = change.image
                return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
        raise RenderError(
            f"Deployment {change.namespace}/{change.name} in {file} has no container "
            f"{change.container!r}"
        )
    raise RenderError(f"{file} holds no Deployment {change.name}")
