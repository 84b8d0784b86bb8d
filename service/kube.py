"""The one Kubernetes client factory: the worker's activities, the watchers and the CLI.

Why one: three builders used to disagree on which configuration wins (in-cluster first in
the activities, ``~/.kube`` first in the CLI), so the same shell could drive the worker and
the CLI at two different clusters. The precedence, documented in ``docs/configuration.md``:

1. an explicit kubeconfig: the caller's (``--kubeconfig``, the watchers' own setting), else
   the ``kubernetes`` section's (``AUTOPILOT_KUBECONFIG``, else ``KUBECONFIG``), in the
   section's ``context`` (``AUTOPILOT_KUBE_CONTEXT``) when one is set, else its current one;
2. in a pod (``KUBERNETES_SERVICE_HOST``): its ServiceAccount;
3. ``~/.kube/config``;
4. the fallbacks the caller offers (the CLI offers the running dev cluster's kubeconfig).

Every client it builds retries under the one HTTP retry policy (:mod:`service.http_retry`:
429 after its Retry-After, 5xx for idempotent verbs, connection errors, bounded and backed
off, counted) and gives a call without a timeout of its own
``request_timeout_s`` (``AUTOPILOT_KUBE_REQUEST_TIMEOUT_S``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config

from service.http_retry import kube_retry
from service.settings import KubernetesSettings

#: Connections a client keeps: enough for the watchers' watches plus their calls.
POOL_SIZE = 32


class KubernetesNotConfigured(RuntimeError):
    """No kubeconfig and no in-cluster ServiceAccount: the message says what was tried."""


def config_source(
    settings: KubernetesSettings | None = None,
    *,
    kubeconfig: Path | None = None,
    fallbacks: Sequence[Path] = (),
) -> Path | None:
    """The kubeconfig file the precedence picks; ``None`` means the in-cluster ServiceAccount.

    Raises:
        KubernetesNotConfigured: Nothing in the precedence applies.
    """
    settings = settings or KubernetesSettings()
    explicit = kubeconfig or settings.kubeconfig
    if explicit is not None:
        return explicit
    if settings.in_cluster:
        return None
    home = Path.home() / ".kube" / "config"
    for candidate in (home, *fallbacks):
        if candidate.is_file():
            return candidate
    raise KubernetesNotConfigured(
        "Kubernetes is not configured: no AUTOPILOT_KUBECONFIG or KUBECONFIG, not in a pod, "
        f"and no {home}"
    )


class _ApiClient(client.ApiClient):
    """The ``kubernetes`` client with a default timeout for calls that set none (not watches)."""

    def __init__(self, configuration: client.Configuration, timeout_s: float) -> None:
        super().__init__(configuration)
        self.default_timeout_s = timeout_s

    def call_api(
        self,
        method: Any,
        url: Any,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        if _request_timeout is None and "watch=true" not in str(url).lower():
            _request_timeout = self.default_timeout_s
        return super().call_api(method, url, header_params, body, post_params, _request_timeout)


def api_client(
    settings: KubernetesSettings | None = None,
    *,
    kubeconfig: Path | None = None,
    fallbacks: Sequence[Path] = (),
    retries: int | None = None,
) -> client.ApiClient:
    """A new API client configured by the precedence above.

    Args:
        settings: the ``kubernetes`` section (read from the environment when omitted).
        kubeconfig: an explicit file that wins over the settings.
        fallbacks: files tried after ``~/.kube/config``.
        retries: urllib3 retries per call instead of the policy's (the CLI wants one, to
            fail fast).

    Raises:
        KubernetesNotConfigured: Nothing in the precedence applies.
    """
    settings = settings or KubernetesSettings()
    configuration = client.Configuration()
    source = config_source(settings, kubeconfig=kubeconfig, fallbacks=fallbacks)
    if source is None:
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(
            config_file=str(source), context=settings.context, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = POOL_SIZE
    configuration.retries = kube_retry() if retries is None else retries
    return _ApiClient(configuration, settings.request_timeout_s)
