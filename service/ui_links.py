"""Links into the Temporal UI: one workflow's page, and the list filtered by a query.

Why one place: the CLI's views, the demo and the GitOps pull requests' bodies all link a
workflow, and three copies of the URL shape had begun to differ (one ignored the namespace).
"""

from __future__ import annotations

from urllib.parse import quote


def workflow_page(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The UI page of one workflow (its latest run)."""
    return f"{_namespace(ui_url, namespace)}/workflows/{quote(workflow_id, safe='')}"


def list_page(ui_url: str, namespace: str, query: str) -> str:
    """The UI's workflow list filtered by a visibility query."""
    return f"{_namespace(ui_url, namespace)}/workflows?query={quote(query, safe='')}"


def _namespace(ui_url: str, namespace: str) -> str:
    return f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
