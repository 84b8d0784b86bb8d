"""The shared Kubernetes layer of the activities, against the real API server.

The operators' own tests show a single conflict retried (``test_canary_activities.py``);
here a writer that can never win shows the retries are bounded and the error names the
object, so Temporal's retry (not an endless loop inside one attempt) takes over.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from activities import kube
from activities.kube import conflicts

pytestmark = pytest.mark.cluster


async def test_a_write_that_keeps_conflicting_gives_up_after_a_bounded_number_of_tries(
    kube_api: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conflicts, "BACKOFF_S", 0.001)
    core = client.CoreV1Api(kube_api)
    settings: Any = {"metadata": {"name": "settings"}}
    core.create_namespaced_config_map(namespace, settings)
    stale: dict[str, Any] = kube_api.sanitize_for_serialization(
        core.read_namespaced_config_map("settings", namespace)
    )
    core.patch_namespaced_config_map("settings", namespace, {"data": {"by": "someone else"}})
    writes: list[str] = []

    async def read() -> dict[str, Any]:
        return dict(stale)  # always the version someone else has replaced since

    def mutate(obj: dict[str, Any]) -> bool:
        obj["data"] = {"by": "us"}
        return True

    async def write(obj: Any) -> dict[str, Any]:
        writes.append(obj["metadata"]["resourceVersion"])
        stored = await asyncio.to_thread(
            core.replace_namespaced_config_map, "settings", namespace, obj
        )
        result: dict[str, Any] = kube_api.sanitize_for_serialization(stored)
        return result

    with pytest.raises(RuntimeError, match=f"ConfigMap {namespace}/settings kept changing"):
        await kube.read_modify_write(read, mutate, write)

    assert len(writes) == conflicts.MAX_CONFLICTS + 1
    live = core.read_namespaced_config_map("settings", namespace)
    assert live.data == {"by": "someone else"}  # the stale write never landed
