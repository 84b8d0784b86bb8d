"""One Kubernetes API client per worker process, shared by every operator's activities.

Built once by the project's one factory (:func:`service.kube.api_client`: an explicit
kubeconfig, else the pod's ServiceAccount, else ``~/.kube/config``) and reused: a worker
holds one connection pool however many rollouts and quarantines it drives.
"""

from __future__ import annotations

import functools

from kubernetes import client

from service import kube


@functools.cache
def api_client() -> client.ApiClient:
    """The process-wide API client (read when first needed, then shared)."""
    return kube.api_client()


def apps() -> client.AppsV1Api:
    """Deployments."""
    return client.AppsV1Api(api_client())


def autoscaling() -> client.AutoscalingV2Api:
    """HorizontalPodAutoscalers (``autoscaling/v2``)."""
    return client.AutoscalingV2Api(api_client())


def core() -> client.CoreV1Api:
    """Services, ConfigMaps, Events."""
    return client.CoreV1Api(api_client())


def custom() -> client.CustomObjectsApi:
    """Istio objects and our own."""
    return client.CustomObjectsApi(api_client())
