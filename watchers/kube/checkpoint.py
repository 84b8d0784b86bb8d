"""Where the Kubernetes watcher keeps the resourceVersion it has fully handled: a ConfigMap.

Why a ConfigMap: it lives in the cluster next to the Lease, so a restarted replica - or the
other replica taking over - resumes where the last leader stopped, with no volume to
mount. One key per watch stream (``deployments``, or ``deployments.<namespace>``), written
at most every ``interval`` seconds and only for events whose effects are complete (see
:class:`~watchers.kube.watcher.KubeWatcher`), so resuming may replay a few events, never
skip one. A namespace that does not exist disables checkpoints with one warning: the
watcher then lists on every start, which is correct, only slower.
"""

from __future__ import annotations

import logging

from kubernetes import client

from watchers.kube.client import KubeCalls

logger = logging.getLogger(__name__)

#: Key prefix in the ConfigMap's data.
KEY_PREFIX = "resourceVersion."
#: Field manager of the watcher's writes.
FIELD_MANAGER = "autopilot-watchers"


class Checkpoint:
    """Load and save resourceVersions in ``<namespace>/<name>`` (a ConfigMap).

    Args:
        calls: runs the client calls.
        namespace: the ConfigMap's namespace (must exist).
        name: the ConfigMap's name.
    """

    def __init__(self, calls: KubeCalls, namespace: str, name: str) -> None:
        self._calls = calls
        self._core = client.CoreV1Api(calls.api)
        self.namespace = namespace
        self.name = name
        self._saved: dict[str, str] = {}
        self._disabled = False
        self.writes = 0

    async def load(self) -> dict[str, str]:
        """The saved resourceVersions by stream; empty when there is no checkpoint."""
        try:
            config_map = await self._calls(
                self._core.read_namespaced_config_map, self.name, self.namespace
            )
        except client.ApiException as error:
            if error.status == 404:
                return {}
            raise
        data = config_map.data or {}
        self._saved = {
            key.removeprefix(KEY_PREFIX): value
            for key, value in data.items()
            if key.startswith(KEY_PREFIX)
        }
        return dict(self._saved)

    async def save(self, versions: dict[str, str]) -> None:
        """Save the resourceVersions that changed since the last save."""
        changed = {k: v for k, v in versions.items() if v and self._saved.get(k) != v}
        if not changed or self._disabled:
            return
        data = {f"{KEY_PREFIX}{stream}": version for stream, version in changed.items()}
        body = {"data": data}
        try:
            await self._calls(
                self._core.patch_namespaced_config_map,
                self.name,
                self.namespace,
                body,
                field_manager=FIELD_MANAGER,
            )
        except client.ApiException as error:
            if error.status != 404:
                logger.warning("checkpoint not saved: %s %s", error.status, error.reason)
                return
            if not await self._create(data):
                return
        self.writes += 1
        self._saved.update(changed)

    async def _create(self, data: dict[str, str]) -> bool:
        config_map = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={"app.kubernetes.io/part-of": "autopilot"},
            ),
            data=data,
        )
        try:
            await self._calls(
                self._core.create_namespaced_config_map,
                self.namespace,
                config_map,
                field_manager=FIELD_MANAGER,
            )
        except client.ApiException as error:
            if error.status == 409:  # created meanwhile (another replica): patch next time
                return False
            if error.status == 404:
                logger.warning(
                    "namespace %s does not exist: resourceVersion checkpoints are off "
                    "(the watcher will list everything on each start)",
                    self.namespace,
                )
                self._disabled = True
                return False
            raise
        return True
