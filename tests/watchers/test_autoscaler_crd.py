"""``spec.autoscalerRef`` through the Canary CRD, as the real API server applies it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.watchers.support import Cluster, canary, unique

pytestmark = pytest.mark.cluster

HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}


def test_a_canary_with_flaggers_autoscaler_ref_is_stored_as_written(cluster: Cluster) -> None:
    body = canary(unique())
    body["spec"]["autoscalerRef"] = {**HPA, "primaryScalerReplicas": {"minReplicas": 2}}

    created = cluster.create_canary(body)

    assert created["spec"]["autoscalerRef"] == body["spec"]["autoscalerRef"]


def test_keda_queries_are_refused_at_apply_with_the_reason(cluster: Cluster) -> None:
    body = canary(unique())
    body["spec"]["autoscalerRef"] = {**HPA, "primaryScalerQueries": {"trigger": "up"}}

    with pytest.raises(client.ApiException) as refused:
        cluster.create_canary(body)

    message = json.loads(refused.value.body or "{}")["message"]
    assert "spec.autoscalerRef.primaryScalerQueries" in message
    assert "it applies to KEDA ScaledObjects" in message
