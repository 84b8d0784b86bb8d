"""Reads the objects the simulator needs from the API server (it writes nothing).

Why a cheap list per tick instead of a watch cache: a tick needs a consistent view of five
kinds, and five list calls are one round trip each, cost linear in the number of objects and
cannot drift from the server the way a cache with a missed event can. Responses are decoded as
plain JSON (``_preload_content=False``), skipping the client's model classes, which are the
slow part of a list.

A namespace being deleted counts as empty at once: the namespace controller empties it, but
that takes a while, and a long test run (hundreds of short-lived namespaces) would meanwhile
make every tick simulate the traffic of the tests before it.

Istio kinds (and Gateway API HTTPRoutes) are read at ``v1`` and fall back to ``v1beta1`` when
the API server does not serve ``v1``; a kind whose CRD is not installed reads as empty (and is
looked for again next tick).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

JsonObject = Mapping[str, Any]

_REQUEST_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class IstioKind:
    """An Istio custom resource and the versions to try, preferred first."""

    group: str
    plural: str
    versions: tuple[str, ...] = ("v1", "v1beta1")


VIRTUAL_SERVICES: Final = IstioKind("networking.istio.io", "virtualservices")
DESTINATION_RULES: Final = IstioKind("networking.istio.io", "destinationrules")
AUTHORIZATION_POLICIES: Final = IstioKind("security.istio.io", "authorizationpolicies")
#: Gateway API HTTPRoutes (read like an Istio kind; see ``httproutes.py``).
HTTP_ROUTES: Final = IstioKind("gateway.networking.k8s.io", "httproutes")


@dataclass
class Snapshot:
    """One tick's view of the cluster, as plain JSON objects."""

    virtual_services: list[JsonObject] = field(default_factory=list)
    destination_rules: list[JsonObject] = field(default_factory=list)
    authorization_policies: list[JsonObject] = field(default_factory=list)
    services: list[JsonObject] = field(default_factory=list)
    deployments: list[JsonObject] = field(default_factory=list)
    http_routes: list[JsonObject] = field(default_factory=list)


def _items(response: Any) -> list[JsonObject]:
    """Decode a raw list response into its items."""
    body = json.loads(response.data)
    items: list[JsonObject] = body.get("items") or []
    return items


class ClusterAccess:
    """Lists the simulator's inputs, optionally in one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str | None = None) -> None:
        """Wrap an API client.

        Args:
            api_client: A configured Kubernetes API client.
            namespace: Only this namespace, or ``None`` for all.
        """
        self.namespace = namespace
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._served: dict[IstioKind, str] = {}
        self.missing_kinds: set[str] = set()

    def _list_core(self, all_namespaces: Callable[..., Any], namespaced: Callable[..., Any]) -> Any:
        options: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": _REQUEST_TIMEOUT,
        }
        if self.namespace is None:
            return _items(all_namespaces(**options))
        return _items(namespaced(self.namespace, **options))

    def _list_istio(self, kind: IstioKind) -> list[JsonObject]:
        versions = [self._served[kind]] if kind in self._served else list(kind.versions)
        for version in versions:
            options: dict[str, Any] = {
                "_preload_content": False,
                "_request_timeout": _REQUEST_TIMEOUT,
            }
            try:
                if self.namespace is None:
                    raw = self._custom.list_cluster_custom_object(
                        kind.group, version, kind.plural, **options
                    )
                else:
                    raw = self._custom.list_namespaced_custom_object(
                        kind.group, version, self.namespace, kind.plural, **options
                    )
            except ApiException as error:
                if error.status == 404:
                    self._served.pop(kind, None)
                    continue
                raise
            self._served[kind] = version
            self.missing_kinds.discard(kind.plural)
            return _items(raw)
        if kind.plural not in self.missing_kinds:
            log.warning("%s.%s is not served; treating it as empty", kind.plural, kind.group)
            self.missing_kinds.add(kind.plural)
        return []

    @property
    def served_versions(self) -> list[str]:
        """The Istio kinds and versions found so far, e.g. for a start-up log line."""
        return [f"{k.plural}.{k.group}/{v}" for k, v in self._served.items()]

    def terminating_namespaces(self) -> set[str]:
        """Namespaces being deleted (a ``deletionTimestamp`` set), whose objects count as gone.

        In single-namespace mode only that namespace is read; a client not allowed to read
        it sees none terminating.
        """
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": _REQUEST_TIMEOUT}
        try:
            if self.namespace is None:
                namespaces = _items(self._core.list_namespace(**options))
            else:
                raw: Any = self._core.read_namespace(self.namespace, **options)
                namespaces = [json.loads(raw.data)]
        except ApiException as error:
            if error.status in (403, 404):
                return set()
            raise
        return {
            str(meta.get("name"))
            for meta in (n.get("metadata") or {} for n in namespaces)
            if meta.get("deletionTimestamp")
        }

    def snapshot(self) -> Snapshot:
        """List everything one tick needs (seven list calls), without deleted namespaces."""
        gone = self.terminating_namespaces()
        snapshot = self._list_all()
        if not gone:
            return snapshot

        def live(items: list[JsonObject]) -> list[JsonObject]:
            return [i for i in items if (i.get("metadata") or {}).get("namespace") not in gone]

        return Snapshot(
            virtual_services=live(snapshot.virtual_services),
            destination_rules=live(snapshot.destination_rules),
            authorization_policies=live(snapshot.authorization_policies),
            services=live(snapshot.services),
            deployments=live(snapshot.deployments),
            http_routes=live(snapshot.http_routes),
        )

    def _list_all(self) -> Snapshot:
        return Snapshot(
            virtual_services=self._list_istio(VIRTUAL_SERVICES),
            destination_rules=self._list_istio(DESTINATION_RULES),
            authorization_policies=self._list_istio(AUTHORIZATION_POLICIES),
            services=self._list_core(
                self._core.list_service_for_all_namespaces, self._core.list_namespaced_service
            ),
            deployments=self._list_core(
                self._apps.list_deployment_for_all_namespaces,
                self._apps.list_namespaced_deployment,
            ),
            http_routes=self._list_istio(HTTP_ROUTES),
        )
