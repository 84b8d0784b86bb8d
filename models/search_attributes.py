"""Names and types of the search attributes Autopilot registers in Temporal.

Plain strings so that the dev cluster (which registers them with ``--search-attribute``)
and the engine (which upserts them) share one list without importing each other.
Types are Temporal's indexed value types.
"""

from __future__ import annotations

#: Every search attribute the engine upserts, with its Temporal type.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "AutopilotOperator": "Keyword",
    "AutopilotTarget": "Keyword",
    "AutopilotNamespace": "Keyword",
    "AutopilotState": "Keyword",
    "AutopilotPaused": "Bool",
    "CanaryWeight": "Int",
    "CanaryDataHash": "Keyword",
}
