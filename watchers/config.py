"""Settings of the Kubernetes and Prometheus watchers, from ``AUTOPILOT_WATCH_*`` variables.

Why one model: ``worker_main`` builds it from the environment, ``deploy/`` sets the same
variables, and tests build it from keyword arguments with short intervals. The webhook
server keeps its own :class:`~watchers.settings.WebhookSettings` (``AUTOPILOT_WEBHOOK_*``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Where a pod finds its own namespace.
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _default_state_namespace() -> str:
    """The pod's own namespace when in a cluster, else ``default`` (which always exists)."""
    try:
        return _POD_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def _default_identity() -> str:
    """``<hostname>-<pid>``: unique per replica, readable in the Lease and in histories."""
    return f"{socket.gethostname()}-{os.getpid()}"


class WatchersSettings(BaseSettings):
    """What the watchers watch, how often, and how replicas share the work.

    Lists are given as JSON in the environment, e.g.
    ``AUTOPILOT_WATCH_NAMESPACES='["shop","pay"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_WATCH_", extra="ignore")

    # -- which watchers run ----------------------------------------------------
    kubernetes: bool = Field(default=True, description="run the Kubernetes watcher")
    prometheus: bool = Field(default=True, description="run the Prometheus watcher")
    webhooks: bool = Field(default=True, description="run the webhook server")

    # -- Kubernetes ------------------------------------------------------------
    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig to use; unset: $KUBECONFIG, then in-cluster, then ~/.kube/config",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="namespaces to watch; empty watches all"
    )
    state_namespace: str = Field(
        default_factory=_default_state_namespace,
        description="namespace of the Lease and of the checkpoint ConfigMap (must exist); "
        "default: the pod's namespace, else 'default'",
    )
    state_name: str = Field(
        default="autopilot-watchers", description="name of the Lease and the ConfigMap"
    )
    identity: str = Field(
        default_factory=_default_identity, description="this replica's name in the Lease"
    )
    watch_timeout_s: int = Field(
        default=300, ge=1, description="server-side timeout of one watch request"
    )
    checkpoint_interval_s: float = Field(
        default=5.0, gt=0, description="least time between two checkpoint writes"
    )
    api_concurrency: int = Field(
        default=8, ge=1, description="Kubernetes API calls in flight at once"
    )

    # -- status mirror -----------------------------------------------------------
    status_interval_s: float = Field(
        default=2.0, gt=0, description="how often Temporal visibility is read for status"
    )
    status_refresh_s: float = Field(
        default=60.0, gt=0, description="re-query every workflow's status at least this often"
    )

    # -- leadership --------------------------------------------------------------
    leader_election: bool = Field(
        default=True, description="use a Lease so that one replica watches at a time"
    )
    lease_duration_s: float = Field(default=15.0, gt=0)
    lease_renew_deadline_s: float = Field(default=10.0, gt=0)
    lease_retry_s: float = Field(default=2.0, gt=0)

    # -- Prometheus --------------------------------------------------------------
    prometheus_url: str = Field(
        default_factory=lambda: os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9090"),
        description="Prometheus to query; defaults to $PROMETHEUS_URL",
    )
    sample_interval_s: float = Field(
        default=15.0, ge=1, description="one query per metric template per this interval"
    )
    query_timeout_s: float = Field(default=5.0, gt=0)
