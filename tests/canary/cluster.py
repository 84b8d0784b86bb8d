"""Helpers for canary tests on the local cluster: a sample app, its revisions, reading routes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubernetes import client

from cli.kube import new_revision_patch
from models.canary import CanaryData, CanarySpec, CanaryStep
from models.operator import Target

#: The simulator's annotation that makes a version answer errors.
ERROR_RATE = "sim.autopilot.dev/error-rate"
#: The simulator's annotation that delays (or, with "never", prevents) readiness.
READY_DELAY = "sim.autopilot.dev/ready-delay"


def app_deployment(
    name: str,
    image: str = "ghcr.io/stefanprodan/podinfo:6.5.0",
    *,
    replicas: int = 2,
    template_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The user's Deployment, as they would write it (selector ``app: <name>``)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": dict(template_annotations or {}),
                },
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def create_app(api: client.ApiClient, namespace: str, deployment: dict[str, Any]) -> None:
    """Create the user's Deployment."""
    body: Any = deployment  # the client accepts plain JSON as well as its models
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body)


def new_revision(
    api: client.ApiClient,
    namespace: str,
    name: str,
    image: str,
    annotations: dict[str, str] | None = None,
) -> None:
    """What a user (or CI) does: change the image (and template annotations), unguarded,
    as ``kubectl set image`` does (a read-then-replace would get a 409 whenever the
    simulator's status update lands between its read and its write)."""
    apps = client.AppsV1Api(api)
    live = api.sanitize_for_serialization(apps.read_namespaced_deployment(name, namespace))
    container = live["spec"]["template"]["spec"]["containers"][0]["name"]
    patch: Any = new_revision_patch(container, image, dict(annotations or {}))
    apps.patch_namespaced_deployment(name, namespace, patch)


def deployment(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """A Deployment as JSON."""
    apps = client.AppsV1Api(api)
    result: dict[str, Any] = api.sanitize_for_serialization(
        apps.read_namespaced_deployment(name, namespace)
    )
    return result


def virtual_service(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The live VirtualService."""
    result: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", name
    )
    return result


def weights(vs: dict[str, Any]) -> dict[str, int]:
    """``{host: weight}`` of the first http route."""
    return {
        r["destination"]["host"]: int(r.get("weight") or 0) for r in vs["spec"]["http"][0]["route"]
    }


def step_for(
    spec: CanarySpec, namespace: str, state: str = "Initializing", **data: Any
) -> CanaryStep:
    """The argument an activity gets on entering ``state``."""
    return CanaryStep(
        workflow_id=f"canary/{namespace}/{spec.target_ref.name}",
        target=Target(namespace=namespace, name=spec.target_ref.name),
        state=state,
        step_key=f"test:{state}",
        spec=spec,
        data=CanaryData(**data),
    )


def mutated(obj: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A changed deep copy."""
    copied = copy.deepcopy(obj)
    change(copied)
    return copied
