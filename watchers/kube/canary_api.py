"""The few writes the watchers make to ``Canary`` objects, and the reads of Deployments.

Why so few: watchers observe and signal; on Kubernetes they only keep their own marks on
the ``Canary`` - the status subresource and one finalizer - and read Deployments. Every
write is a JSON merge patch of exactly the fields the watcher owns, so the status mirror
and the Kubernetes watcher never overwrite each other, and nothing else is touched.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kubernetes import client

from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from watchers.kube.client import KubeCalls
from watchers.kube.objects import CanaryObject

logger = logging.getLogger(__name__)

_MERGE_PATCH = "application/merge-patch+json"
#: Field manager of the watchers' writes (visible in ``managedFields``).
FIELD_MANAGER = "autopilot-watchers"


class CanaryApi:
    """Status and finalizer writes on Canaries; Deployment reads.

    Args:
        calls: runs the blocking client calls, bounded.
    """

    def __init__(self, calls: KubeCalls) -> None:
        self.calls = calls
        self.custom = client.CustomObjectsApi(calls.api)
        self.apps = client.AppsV1Api(calls.api)
        self.status_writes = 0

    async def patch_status(
        self, canary: CanaryObject, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge ``fields`` (wire names) into ``status``; the updated object, or None if gone."""
        if not fields:
            return None
        try:
            updated: Any = await self.calls(
                self.custom.patch_namespaced_custom_object_status,
                CANARY_GROUP,
                CANARY_VERSION,
                canary.namespace,
                CANARY_PLURAL,
                canary.name,
                {"status": fields},
                field_manager=FIELD_MANAGER,
                _content_type=_MERGE_PATCH,
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        self.status_writes += 1
        return dict(updated)

    async def set_finalizers(
        self, canary: CanaryObject, finalizers: list[str]
    ) -> dict[str, Any] | None:
        """Replace ``metadata.finalizers`` if the object is unchanged since it was read.

        Returns:
            The updated object, or None when it changed meanwhile (409) or is gone (404):
            its next event will bring the decision back.
        """
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": canary.resource_version}}
        try:
            updated: Any = await self.calls(
                self.custom.patch_namespaced_custom_object,
                CANARY_GROUP,
                CANARY_VERSION,
                canary.namespace,
                CANARY_PLURAL,
                canary.name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=_MERGE_PATCH,
            )
        except client.ApiException as error:
            if error.status in (404, 409):
                logger.info(
                    "finalizers of %s/%s not written: %s",
                    canary.namespace,
                    canary.name,
                    error.status,
                )
                return None
            raise
        return dict(updated)

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment as raw JSON, or None when it does not exist."""
        try:
            response: Any = await self.calls(
                self.apps.read_namespaced_deployment, name, namespace, _preload_content=False
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        deployment: dict[str, Any] = json.loads(response.data)
        return deployment
