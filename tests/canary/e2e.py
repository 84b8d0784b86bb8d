"""Helpers for end-to-end canary tests: a worker on the cluster's Temporal, a weight recorder."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kubernetes import client, watch
from temporalio.client import Client, WorkflowHandle

from models.operator import (
    COMMAND_UPDATE,
    EVENT_SIGNAL,
    STATUS_QUERY,
    CommandReceipt,
    CommandRequest,
    EventEnvelope,
    OperatorInput,
    OperatorStatus,
    Target,
)


class Rollouts:
    """Start canary workflows and talk to them as the CLI would."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, namespace: str, name: str, spec: dict[str, Any]) -> WorkflowHandle:
        target = Target(namespace=namespace, name=name)
        return await self.client.start_workflow(
            "canary",
            OperatorInput(target=target, spec=spec),
            id=target.workflow_id("canary"),
            task_queue=self.task_queue,
            result_type=OperatorStatus,
        )

    @staticmethod
    async def status(handle: WorkflowHandle) -> OperatorStatus:
        return await handle.query(STATUS_QUERY, result_type=OperatorStatus)

    @staticmethod
    async def command(
        handle: WorkflowHandle, name: str, by: str = "alice", reason: str | None = None
    ) -> CommandReceipt:
        return await handle.execute_update(
            COMMAND_UPDATE,
            CommandRequest(command=name, by=by, reason=reason),
            result_type=CommandReceipt,
        )

    @staticmethod
    async def signal(handle: WorkflowHandle, event: str, event_id: str, **payload: Any) -> None:
        """Send a watcher event."""
        envelope = EventEnvelope(id=event_id, type=event, payload=payload, source="test")
        await handle.signal(EVENT_SIGNAL, envelope)

    async def wait_for_weight(
        self, handle: WorkflowHandle, weight: int, attempts: int = 600
    ) -> OperatorStatus:
        """Poll until the machine has applied ``weight`` (last of ``applied_weights``)."""
        for _ in range(attempts):
            current = await self.status(handle)
            if current.data["applied_weights"][-1:] == [weight]:
                return current
            await asyncio.sleep(0.1)
        raise AssertionError(f"weight {weight} never applied: {current.data}")

    async def wait_for(
        self, handle: WorkflowHandle, *states: str, attempts: int = 600
    ) -> OperatorStatus:
        """Poll until the machine is in one of ``states`` (a functional wait: up to ~2 min)."""
        current = await self.status(handle)
        for _ in range(attempts):
            if current.state in states:
                return current
            await asyncio.sleep(0.2)
            current = await self.status(handle)
        raise AssertionError(f"expected {states}, still {current.state}: {current.data}")


class WeightRecorder:
    """Watches a VirtualService and records every distinct canary weight it takes."""

    #: The watched kind (a subclass watches another routing object).
    GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.canary_weights: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WeightRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def canary_weight(self, obj: dict[str, Any]) -> int | None:
        """The canary's weight in the watched object."""
        for route in obj["spec"]["http"][0]["route"]:
            if route["destination"]["host"].endswith("-canary"):
                return int(route.get("weight") or 0)
        return None

    def _record(self, obj: dict[str, Any]) -> None:
        weight = self.canary_weight(obj)
        if weight is not None and (not self.canary_weights or self.canary_weights[-1] != weight):
            self.canary_weights.append(weight)

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        version: str | None = None
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    self.GROUP,
                    self.VERSION,
                    self.namespace,
                    self.PLURAL,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=version,
                    timeout_seconds=1,
                ):
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj)
                    if self._stop.is_set():
                        return
            except client.ApiException as error:
                if error.status == 410:
                    version = None
                else:
                    raise
