"""One Kubernetes API client per worker process, shared by every operator's activities.

Built once from ``KUBECONFIG`` (or ``~/.kube/config``), else from the in-cluster service
account, and reused: a worker holds one connection pool however many rollouts and
quarantines it drives.
"""

from __future__ import annotations

import functools
import os

from kubernetes import client, config


@functools.cache
def api_client() -> client.ApiClient:
    """The process-wide API client: ``KUBECONFIG`` (or ~/.kube/config), else in-cluster."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        # Read KUBECONFIG now: the client's default was frozen when it was imported.
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


def apps() -> client.AppsV1Api:
    """Deployments."""
    return client.AppsV1Api(api_client())


def core() -> client.CoreV1Api:
    """Services, ConfigMaps, Events."""
    return client.CoreV1Api(api_client())


def custom() -> client.CustomObjectsApi:
    """Istio objects and our own."""
    return client.CustomObjectsApi(api_client())
