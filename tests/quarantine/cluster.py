"""Helpers for quarantine tests on the local cluster: a sample app, reading what was written."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from models.operator import Target
from models.quarantine import AlertRecord, QuarantineData, QuarantineSpec, QuarantineStep
from tests.temporal_env import executable

NOW = datetime(2025, 3, 14, 9, 27, tzinfo=UTC)


def step_for(
    namespace: str,
    name: str,
    *,
    state: str = "Isolated",
    spec: dict[str, Any] | None = None,
    quarantined_at: datetime = NOW,
    **data: Any,
) -> QuarantineStep:
    """The argument a quarantine worker gets on entering ``state`` after one alert."""
    first = AlertRecord(
        alertname="CryptoMinerDetected", severity="critical", fingerprint="c2f5", received_at=NOW
    )
    return QuarantineStep(
        workflow_id=f"quarantine/{namespace}/{name}",
        target=Target(namespace=namespace, name=name),
        state=state,
        step_key=f"test:{name}:{state}",
        spec=QuarantineSpec.model_validate(spec or {}),
        data=QuarantineData(alerts=[first], quarantined_at=quarantined_at, **data),
    )


def create_app(
    api: client.ApiClient, namespace: str, name: str, image: str = "ghcr.io/example/web:1.0"
) -> None:
    """A Deployment ``app: <name>`` and its Service, as a team would deploy them."""
    deployment: Any = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "team": "shop"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "version": "v1"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }
    service: Any = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    client.CoreV1Api(api).create_namespaced_service(namespace, service)


def deployment(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(
        client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    )
    return result


def policies(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """Every AuthorizationPolicy in the namespace."""
    listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "security.istio.io", "v1", namespace, "authorizationpolicies"
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


def kubectl_json(kubeconfig: Path, *args: str) -> Any:
    """What the real ``kubectl`` shows, as JSON."""
    out = subprocess.run(
        [executable("kubectl"), "--kubeconfig", str(kubeconfig), *args, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout)
