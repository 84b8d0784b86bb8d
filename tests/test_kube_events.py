"""The shared Event recorder against the real API server: deduplicated, idempotent, bounded.

What ``kubectl describe`` shows of a repeated Event is its ``count``; what a retried
activity must not do is add to it. Both are read back from the API server as kubectl would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from activities import kube
from activities.kube import events
from activities.kube.events import ObjectRef, RateLimit, Recorder, event_name
from models.kube_events import EventNote
from tests.watchers.support import kubectl

pytestmark = pytest.mark.cluster

OWNER = kube.Owner("drill")


@pytest.fixture
def kube_env(kubeconfig_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_path))
    kube.api_client.cache_clear()
    yield
    kube.api_client.cache_clear()


def config_map(kube_api: client.ApiClient, namespace: str, name: str) -> ObjectRef:
    """Something to write Events about: a ConfigMap, with its uid."""
    body: Any = {"metadata": {"name": name}}
    created = client.CoreV1Api(kube_api).create_namespaced_config_map(namespace, body)
    assert created.metadata is not None
    return ObjectRef("v1", "ConfigMap", namespace, name, created.metadata.uid)


def listed(kube_api: client.ApiClient, namespace: str) -> list[Any]:
    return list(client.CoreV1Api(kube_api).list_namespaced_event(namespace).items)


FAILED = EventNote(type="Warning", reason="CheckFailed", message="latency 812ms (max 500)")


async def test_a_repeated_event_is_counted_on_one_event_and_a_retry_adds_nothing(
    kube_api, namespace, kube_env, kubeconfig_path
):
    about = config_map(kube_api, namespace, "settings")
    recorder = Recorder(OWNER, RateLimit())

    first = await recorder.record(about, FAILED, "check-1", "drill/x/settings")
    again = await recorder.record(about, FAILED, "check-1", "drill/x/settings")  # a retry
    second = await recorder.record(about, FAILED, "check-2", "drill/x/settings")

    assert (
        first
        == again
        == second
        == f"{namespace}/{event_name(about, 'CheckFailed', FAILED.message)}"
    )
    [event] = listed(kube_api, namespace)
    assert (event.reason, event.type, event.count) == ("CheckFailed", "Warning", 2)
    assert event.involved_object.uid == about.uid
    assert event.source.component == "autopilot-drill"
    shown = kubectl(kubeconfig_path, "describe", "configmap", "settings", "-n", namespace)
    assert "(x2 over" in shown and "latency 812ms (max 500)" in shown


async def test_occurrences_with_one_key_share_an_event_that_shows_the_latest_message(
    kube_api, namespace, kube_env
):
    about = config_map(kube_api, namespace, "settings")
    recorder = Recorder(OWNER, RateLimit())
    for number, value in enumerate((812, 910)):
        note = EventNote(
            type="Warning", reason="CheckFailed", message=f"latency {value}ms", key="latency"
        )
        await recorder.record(about, note, f"check-{number}", "drill/x/settings")

    [event] = listed(kube_api, namespace)
    assert (event.count, event.message) == (2, "latency 910ms")


async def test_an_occurrence_after_the_window_starts_the_count_over(
    kube_api, namespace, kube_env, monkeypatch
):
    monkeypatch.setattr(events, "WINDOW", timedelta(seconds=-1))  # every repeat is "later"
    about = config_map(kube_api, namespace, "settings")
    recorder = Recorder(OWNER, RateLimit())
    for number in range(3):
        await recorder.record(about, FAILED, f"check-{number}", "drill/x/settings")

    [event] = listed(kube_api, namespace)
    assert event.count == 1


async def test_events_over_the_objects_rate_limit_are_dropped_not_queued(
    kube_api, namespace, kube_env
):
    about = config_map(kube_api, namespace, "settings")
    other = config_map(kube_api, namespace, "other")
    recorder = Recorder(OWNER, RateLimit(burst=2, refill_s=3600))
    written = [
        await recorder.record(
            about, EventNote(reason="Step", message=f"step {n}"), f"s{n}", "drill/x/settings"
        )
        for n in range(4)
    ]
    elsewhere = await recorder.record(other, FAILED, "o1", "drill/x/other")

    assert [name is not None for name in written] == [True, True, False, False]
    assert elsewhere is not None  # each object has its own bucket
    assert len(listed(kube_api, namespace)) == 3


async def test_an_event_the_api_server_refuses_is_reported_as_not_written(
    kube_api, namespace, kube_env
):
    missing = ObjectRef("v1", "ConfigMap", "no-such-namespace", "settings")
    recorder = Recorder(OWNER, RateLimit())

    assert await recorder.record(missing, FAILED, "check-1", "drill/x/settings") is None
