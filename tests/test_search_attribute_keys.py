"""The typed keys the CLI and the watchers read are the search attributes Autopilot registers."""

from __future__ import annotations

from temporalio.common import SearchAttributeIndexedValueType

from models.search_attributes import SEARCH_ATTRIBUTES
from service.search_attributes import KEYS

_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.BOOL: "Bool",
}


def test_every_registered_search_attribute_has_one_key_of_its_type() -> None:
    assert {key.name: _TYPES[key.indexed_value_type] for key in KEYS} == SEARCH_ATTRIBUTES
