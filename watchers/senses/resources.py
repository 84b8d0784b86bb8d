"""List and watch any resource by group, version and plural, for the informer.

The official client has a typed function per built-in kind and ``CustomObjectsApi`` for the
rest; a sense may name either, so this builds the one call the informer needs from the
resource's path (``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...``
otherwise) and passes the informer's keyword arguments on as the API's query parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

#: The informer's keyword arguments and the query parameters they are.
_QUERY = {
    "limit": "limit",
    "_continue": "continue",
    "watch": "watch",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "label_selector": "labelSelector",
}


def resource_path(group: str, version: str, plural: str, namespace: str | None) -> str:
    """The collection's path on the API server."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        return f"{base}/namespaces/{namespace}/{plural}"
    return f"{base}/{plural}"


def list_call(
    api: client.ApiClient,
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    label_selector: str = "",
) -> Callable[..., Any]:
    """A function the :class:`~watchers.kube.informer.Informer` can list and watch with."""
    path = resource_path(group, version, plural, namespace)

    def call(**kwargs: Any) -> Any:
        query: list[tuple[str, Any]] = [
            (_QUERY[key], value)
            for key, value in kwargs.items()
            if key in _QUERY and value is not None
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        request = api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        # The generated APIs' own path: raw urllib3 response when not preloaded, so the
        # informer reads the list's JSON and the watch's lines itself; non-2xx raises.
        return api._call_with_legacy_options(
            request,
            {"200": "object"},
            False,
            kwargs.get("_preload_content", False),
            kwargs.get("_request_timeout"),
            True,
        )

    return call
