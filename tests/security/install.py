"""Install the operators' RBAC as ``deploy/`` ships it, for a ServiceAccount of a test's own.

The objects are those of ``deploy/kubernetes/rbac.yaml`` (or its namespaced variant), renamed
so that a test's install meets no other (the cluster-scoped names get a suffix, the
ServiceAccount lives in the test's namespace); the rules are the manifest's, unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.kubeconfig import ServiceAccountIdentity, service_account_identity

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
#: The cluster-wide install.
RBAC = DEPLOY / "rbac.yaml"
#: The namespaced install: a Role and RoleBinding per watched namespace.
NAMESPACED_RBAC = DEPLOY / "namespaced" / "rbac.yaml"


def documents(path: Path) -> list[dict[str, Any]]:
    """The objects of a manifest."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def operators_role(path: Path = RBAC) -> dict[str, Any]:
    """The role the worker and the watchers are bound to (not the approvers' role)."""
    [role] = [
        doc
        for doc in documents(path)
        if doc["kind"] in ("ClusterRole", "Role") and doc["metadata"]["name"] == "autopilot"
    ]
    return role


@contextlib.contextmanager
def operators_identity(
    admin: client.ApiClient,
    service_account_namespace: str,
    role: dict[str, Any],
    bound_in: list[str] | None = None,
) -> Iterator[ServiceAccountIdentity]:
    """The ``autopilot`` ServiceAccount in ``service_account_namespace``, bound to ``role``:
    cluster-wide for a ClusterRole, else in each namespace of ``bound_in``; a bound token."""
    rbac = client.RbacAuthorizationV1Api(admin)
    suffix = secrets.token_hex(3)
    subject = {
        "kind": "ServiceAccount",
        "name": "autopilot",
        "namespace": service_account_namespace,
    }
    role = copy.deepcopy(role)
    body: Any = role  # the client accepts plain JSON as well as its models
    cleanup: list[Any] = []
    try:
        if role["kind"] == "ClusterRole":
            role["metadata"]["name"] = f"autopilot-{suffix}"
            rbac.create_cluster_role(body)
            cleanup.append(lambda: rbac.delete_cluster_role(role["metadata"]["name"]))
            binding: Any = {
                "metadata": {"name": f"autopilot-{suffix}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role["metadata"]["name"],
                },
                "subjects": [subject],
            }
            rbac.create_cluster_role_binding(binding)
            cleanup.append(lambda: rbac.delete_cluster_role_binding(binding["metadata"]["name"]))
        else:
            for namespace in bound_in or []:
                local: Any = copy.deepcopy(role)
                local["metadata"]["namespace"] = namespace
                rbac.create_namespaced_role(namespace, local)
                rolebinding: Any = {
                    "metadata": {"name": "autopilot", "namespace": namespace},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "autopilot",
                    },
                    "subjects": [subject],
                }
                rbac.create_namespaced_role_binding(namespace, rolebinding)
        yield service_account_identity(admin, service_account_namespace, "autopilot")
    finally:
        for undo in reversed(cleanup):
            with contextlib.suppress(client.ApiException):
                undo()
