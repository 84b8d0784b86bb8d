"""Helpers for the watcher tests: objects to apply, running watchers, reading Temporal.

Everything here talks to the session's real cluster (kube-apiserver, Prometheus, Temporal);
nothing is simulated but the data plane, which the dev cluster's simulator provides.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client import CollectorRegistry
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from models.operator import EventEnvelope
from service.settings import WatchersSettings, WebhookSettings
from tests.canary.cluster import new_revision
from tests.waiting import eventually as eventually  # re-exported for the watcher tests
from watchers.delivery import Delivery, DeliveryMetrics, RetryPolicy
from watchers.runner import Runner

FAST = {
    "status_interval_s": 0.5,
    "status_refresh_s": 5.0,
    "checkpoint_interval_s": 0.2,
    "lease_duration_s": 4.0,
    "lease_renew_deadline_s": 3.0,
    "lease_retry_s": 0.5,
    "sample_interval_s": 2.0,
    "webhooks": False,
}


def settings(namespace: str, **overrides: Any) -> WatchersSettings:
    """Watcher settings confined to one test namespace, with short intervals."""
    values: dict[str, Any] = {
        "namespaces": [namespace],
        "state_namespace": namespace,
        "leader_election": False,
        **FAST,
    }
    values.update(overrides)
    return WatchersSettings(**values)


def make_delivery(temporal: Client, queue: str) -> Delivery:
    """A delivery to ``queue`` with its own metrics registry and quick retries."""
    return Delivery(
        temporal,
        task_queue=queue,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.05, deadline_s=10),
        metrics=DeliveryMetrics.for_registry(CollectorRegistry()),
    )


def deployment(name: str, image: str = "podinfo:6.5.0", replicas: int = 1) -> dict[str, Any]:
    """The user's Deployment, as they would write it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def canary(
    name: str,
    *,
    target: str | None = None,
    analysis: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Canary as a user would apply it."""
    return {
        "apiVersion": f"{CANARY_GROUP}/{CANARY_VERSION}",
        "kind": "Canary",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
            "service": {"port": 9898},
            "analysis": analysis
            or {
                "interval": "10s",
                "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
        },
    }


class Cluster:
    """The few cluster operations the tests make, on one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create_deployment(self, body: dict[str, Any]) -> None:
        raw: Any = body
        self.apps.create_namespaced_deployment(self.namespace, raw)

    def set_image(self, name: str, image: str) -> None:
        new_revision(self.api, self.namespace, name, image)

    def scale(self, name: str, replicas: int) -> None:
        body: Any = {"spec": {"replicas": replicas}}
        self.apps.patch_namespaced_deployment_scale(name, self.namespace, body)

    def delete_deployment(self, name: str) -> None:
        self.apps.delete_namespaced_deployment(name, self.namespace)

    def create_canary(self, body: dict[str, Any]) -> dict[str, Any]:
        created: Any = self.custom.create_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, self.namespace, CANARY_PLURAL, copy.deepcopy(body)
        )
        return dict(created)

    def get_canary(self, name: str) -> dict[str, Any] | None:
        try:
            found: Any = self.custom.get_namespaced_custom_object(
                CANARY_GROUP, CANARY_VERSION, self.namespace, CANARY_PLURAL, name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found)

    def delete_canary(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, self.namespace, CANARY_PLURAL, name
        )

    def checkpoint(self, name: str = "autopilot-watchers") -> dict[str, str]:
        try:
            config_map = self.core.read_namespaced_config_map(name, self.namespace)
        except client.ApiException as error:
            if error.status == 404:
                return {}
            raise
        return dict(config_map.data or {})


def kubectl(kubeconfig: Path, *args: str) -> str:
    """Run the real kubectl against the session's cluster; its stdout."""
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result.stdout


@contextlib.asynccontextmanager
async def running(
    watch_settings: WatchersSettings,
    delivery: Delivery,
    api: client.ApiClient,
    webhooks: WebhookSettings | None = None,
) -> AsyncIterator[Runner]:
    """Run the watchers in the background for the duration of the block (``webhooks``: the
    webhook server's settings, when ``watch_settings`` turns it on)."""
    runner = Runner(watch_settings, delivery, api=api, webhook_settings=webhooks)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def signals(
    temporal: Client, workflow_id: str, run_id: str | None = None
) -> list[EventEnvelope]:
    """Every ``event`` signal in a workflow run's history, in order."""
    handle = temporal.get_workflow_handle(workflow_id, run_id=run_id)
    found = []
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                attributes = event.workflow_execution_signaled_event_attributes
                payloads = await temporal.data_converter.decode(
                    attributes.input.payloads, [EventEnvelope]
                )
                found.append(payloads[0])
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    return found


async def runs(temporal: Client, workflow_id: str) -> list[str]:
    """Run IDs of every execution of ``workflow_id``, oldest first."""
    listed = [
        execution async for execution in temporal.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]
    listed.sort(key=lambda execution: execution.start_time)
    return [execution.run_id for execution in listed]


async def terminate_all(temporal: Client, namespace: str) -> None:
    """Terminate every running canary workflow of a test namespace."""
    query = "WorkflowType = 'canary' AND ExecutionStatus = 'Running'"
    async for execution in temporal.list_workflows(query):
        if f"/{namespace}/" in execution.id:
            with contextlib.suppress(Exception):
                await temporal.get_workflow_handle(execution.id).terminate("test over")


def unique(prefix: str = "app") -> str:
    """A fresh Kubernetes-valid name."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
