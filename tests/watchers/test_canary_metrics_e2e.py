"""The canary controller's metrics, scraped from the watchers' ``/metrics`` as Prometheus would.

A Canary, the watchers (with their webhook server, which serves ``/metrics``) and the real
canary operator on the local cluster: a healthy revision is promoted, then a faulty one is
rolled back. The scrapes must show what a Flagger user reads on their dashboard: the status
(0 progressing, 1 succeeded, 2 failed), the primary/canary weights, each metric's last value
and one duration per analysis.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from devcluster.process import free_port
from service.settings import WebhookSettings
from tests.canary.cluster import ERROR_RATE, new_revision
from tests.watchers.support import (
    Cluster,
    canary,
    deployment,
    eventually,
    make_delivery,
    running,
    settings,
    unique,
)
from tests.watchers.test_canary_events_e2e import ANALYSIS as ROLLED_BACK_ANALYSIS

pytestmark = [pytest.mark.cluster, pytest.mark.temporal, pytest.mark.usefixtures("cleanup")]

#: The events test's rollout (its metric fails a half-failing canary), with five steps.
ANALYSIS: dict[str, Any] = {**ROLLED_BACK_ANALYSIS, "maxWeight": 50}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def read_page(port: int) -> str:
    """The text of ``/metrics`` (empty while the server starts)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            return str(page.read().decode())
    except urllib.error.URLError:
        return ""


async def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, by name and labels; read in a thread, since the server
    runs on this very event loop."""
    text = await asyncio.to_thread(read_page, port)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, series: str, /, **labels: str) -> float | None:
    return samples.get((series, frozenset(labels.items())))


async def test_the_metrics_show_status_weights_and_analyses_of_each_rollout(
    cluster: Cluster, kube_api: client.ApiClient, temporal: Client, canary_queue: str
) -> None:
    app, namespace = unique("web"), cluster.namespace
    cluster.create_deployment(deployment(app))
    cluster.create_canary(canary(unique("rollout"), target=app, analysis=ANALYSIS))
    port = free_port()
    watch = settings(namespace, webhooks=True)
    hooks = WebhookSettings(port=port)

    def status(samples: Samples) -> float | None:
        return value(samples, "autopilot_canary_status", name=app, namespace=namespace)

    def success_rate(samples: Samples) -> float | None:
        labels = {"name": app, "namespace": namespace, "metric": "request-success-rate"}
        return value(samples, "autopilot_canary_metric_analysis", **labels)

    def weights(samples: Samples) -> tuple[float | None, ...]:
        """``(primary, canary)``, as ``autopilot_canary_weight`` shows them."""
        return tuple(
            value(samples, "autopilot_canary_weight", workload=workload, namespace=namespace)
            for workload in (f"{app}-primary", app)
        )

    async with running(watch, make_delivery(temporal, canary_queue), kube_api, hooks):
        bootstrapped = await eventually(lambda: scrape(port), lambda s: status(s) == 1)
        assert weights(bootstrapped) == (100, 0)
        assert value(bootstrapped, "autopilot_canary_total", namespace=namespace) == 1
        [info] = [labels for name, labels in bootstrapped if name == "autopilot_info"]
        assert dict(info)["mesh_provider"] == "istio"

        new_revision(kube_api, namespace, app, "podinfo:6.6.0")
        progressing = await eventually(
            lambda: scrape(port),
            lambda s: status(s) == 0 and (weights(s)[1] or 0) > 0,
            attempts=600,
            what="a scrape while the canary takes traffic",
        )
        primary, canary_weight = weights(progressing)
        assert canary_weight in (10, 20, 30, 40, 50)
        assert primary == 100 - canary_weight
        promoted = await eventually(
            lambda: scrape(port), lambda s: status(s) == 1 and weights(s) == (100, 0), attempts=600
        )
        success = success_rate(promoted)
        assert success is not None and success >= 99
        labels = {"name": app, "namespace": namespace}
        analyses = value(promoted, "autopilot_canary_duration_seconds_count", **labels)
        assert analyses is not None and analyses >= 1
        took = value(promoted, "autopilot_canary_duration_seconds_sum", **labels)
        assert took is not None and took > 0

        new_revision(kube_api, namespace, app, "podinfo:6.6.1", {ERROR_RATE: "0.5"})
        failed = await eventually(
            lambda: scrape(port), lambda s: status(s) == 2 and weights(s) == (100, 0), attempts=600
        )
        success = success_rate(failed)
        assert success is not None and success < 99
