"""Typed keys of the search attributes the engine upserts, for the code that reads them.

Their names and types are listed once in :mod:`models.search_attributes` (the dev cluster
registers them from there; models may not import Temporal); the CLI's listing and status
and the watchers' directory read the attributes through these keys, and a test holds the
two lists together.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from models.canary_watch import DATA_HASH_ATTRIBUTE

KEY_OPERATOR = SearchAttributeKey.for_keyword("AutopilotOperator")
KEY_TARGET = SearchAttributeKey.for_keyword("AutopilotTarget")
KEY_NAMESPACE = SearchAttributeKey.for_keyword("AutopilotNamespace")
KEY_STATE = SearchAttributeKey.for_keyword("AutopilotState")
KEY_PAUSED = SearchAttributeKey.for_bool("AutopilotPaused")
KEY_WEIGHT = SearchAttributeKey.for_int("CanaryWeight")
KEY_DATA_HASH = SearchAttributeKey.for_keyword(DATA_HASH_ATTRIBUTE)

#: Every key above.
KEYS: tuple[SearchAttributeKey[Any], ...] = (
    KEY_OPERATOR,
    KEY_TARGET,
    KEY_NAMESPACE,
    KEY_STATE,
    KEY_PAUSED,
    KEY_WEIGHT,
    KEY_DATA_HASH,
)
