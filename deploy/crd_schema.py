"""Pydantic JSON schema to Kubernetes' structural-schema dialect, for generated CRDs.

Why here, next to :mod:`deploy.generate_crds`: it is a concern of CRD generation only. The
models say what a spec is; this says how the API server must be told, so that it refuses
exactly what the models refuse, with the same field names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI v3 schema of ``model`` (as users write it) in the form a CRD accepts.

    ``$ref`` is inlined, ``anyOf [X, null]`` becomes ``X`` with ``nullable``, free-form
    objects get ``x-kubernetes-preserve-unknown-fields``, titles are dropped, and the
    bound on a map's keys (``propertyNames``, which Kubernetes lacks) becomes a CEL rule.
    """
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    result: dict[str, Any] = _structural(schema, definitions)
    return result


def _structural(node: Any, definitions: dict[str, Any]) -> Any:
    """Rewrite one JSON-schema node into Kubernetes' structural-schema dialect."""
    if isinstance(node, list):
        return [_structural(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **rest}, definitions)
    node = {k: v for k, v in node.items() if k not in ("title", "default")}
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            node = {**options[0], **node}
        elif {o.get("type") for o in options} <= {"integer", "string"}:
            node["x-kubernetes-int-or-string"] = True
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True
        node["nullable"] = True
        if "$ref" in node:
            return _structural(node, definitions)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    names = node.pop("propertyNames", None)  # not in Kubernetes' dialect: a CEL rule instead
    if isinstance(names, dict) and "maxLength" in names:
        node.setdefault("x-kubernetes-validations", []).append(
            {
                "rule": f"self.all(key, size(key) <= {names['maxLength']})",
                "message": f"keys may be at most {names['maxLength']} characters",
            }
        )
    if node.get("type") == "object" and "properties" not in node:
        extra = node.pop("additionalProperties", None)
        if isinstance(extra, dict) and extra:
            node["additionalProperties"] = extra
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True
    elif "properties" in node:
        node.pop("additionalProperties", None)
    if set(node) <= {"nullable", "description"} and "$ref" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    for bound in ("minimum", "maximum"):
        # 1.0 and 1 are the same bound, but YAML tools disagree on how to write it (kubectl
        # kustomize writes 1, Helm 1.0): write whole numbers as integers, once.
        value = node.get(bound)
        if isinstance(value, float) and value.is_integer():
            node[bound] = int(value)
    return {k: _structural(v, definitions) for k, v in node.items()}


def flat_structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of a flat model as it is written out (a CRD's ``status``).

    Every field has one type: ``anyOf [X, null]`` becomes ``X`` with ``nullable``.
    """
    result: dict[str, Any] = _flat(model.model_json_schema(by_alias=True, mode="serialization"))
    return result


def _flat(node: Any) -> Any:
    """Structural form of a flat model's schema: ``anyOf [X, null]`` -> ``X`` + nullable."""
    if isinstance(node, list):
        return [_flat(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in ("title", "default")}
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"status fields must have one type, got {options}")
        node = {**options[0], **node, "nullable": True}
    return {key: _flat(value) for key, value in node.items()}


def custom_resource_definition(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    singular: str,
    short_names: Sequence[str] = (),
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    printer_columns: list[dict[str, Any]],
) -> dict[str, Any]:
    """A namespaced CRD of ours: one served version, with a status subresource if it has a
    status (a resource only read, like a MetricTemplate, has none)."""
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": singular,
    }
    if short_names:
        names["shortNames"] = list(short_names)
    names["categories"] = ["autopilot"]
    version_entry: dict[str, Any] = {"name": version, "served": True, "storage": True}
    if status is not None:
        version_entry["subresources"] = {"status": {}}
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    version_entry["additionalPrinterColumns"] = printer_columns
    version_entry["schema"] = {
        "openAPIV3Schema": {
            "description": description,
            "type": "object",
            "required": ["spec"],
            "properties": properties,
        }
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "autopilot"},
        },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": [version_entry],
        },
    }
