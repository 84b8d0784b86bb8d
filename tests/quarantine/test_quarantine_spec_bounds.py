"""The quarantine spec's size bounds: each refusal names its field and its limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.errors import describe
from models.quarantine import QuarantineSpec


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"exemptNamespaces": [f"ns-{i}" for i in range(51)]},
            "spec.exemptNamespaces: List should have at most 50 items after validation, not 51",
        ),
        (
            {"exemptNamespaces": ["n" * 64]},
            "spec.exemptNamespaces.0: String should have at most 63 characters",
        ),
        (
            {"selector": {f"label-{i}": "x" for i in range(51)}},
            "spec.selector: Dictionary should have at most 50 items after validation, not more",
        ),
        (
            {"selector": {"k" * 318: "x"}},
            "spec.selector: Value error, a label key may be at most 317 characters and a value "
            "at most 63",
        ),
        (
            {"notifyUrl": "https://hooks.example/" + "x" * 2048},
            "spec.notifyUrl: String should have at most 2048 characters",
        ),
        (
            {"escalateAfter": "9" * 30 + "h"},
            "spec.escalateAfter: Value error, '" + "9" * 30 + "h' is longer than any duration "
            "can be",
        ),
    ],
)
def test_a_quarantine_spec_over_a_bound_is_refused_naming_the_field_and_the_limit(fields, problem):
    with pytest.raises(ValidationError) as refused:
        QuarantineSpec.model_validate(fields)
    assert describe(refused.value, "spec") == problem
