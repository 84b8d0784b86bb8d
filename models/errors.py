"""Turn pydantic validation errors into sentences that name the field.

Used at every edge (CLI, workflow start, webhooks) so a user reads
``spec.analysis.stepWeight: Input should be greater than 0`` instead of a traceback.
"""

from __future__ import annotations

from pydantic import ValidationError


def field_errors(error: ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message`` line per problem in ``error``."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"])
        where = ".".join(p for p in (prefix, path) if p) or "(root)"
        lines.append(f"{where}: {item['msg']}")
    return lines


def describe(error: ValidationError, prefix: str = "") -> str:
    """All problems in ``error`` on one line each, joined for a message."""
    return "; ".join(field_errors(error, prefix))


#: ``ApplicationError.type`` of an activity failure no retry can fix: the engine's retry
#: policy lists it, so Temporal stops retrying and the machine gets ``ActivityFailed`` at once.
#: Workflow histories record the name: it must never change.
NON_RETRYABLE = "NonRetryable"
#: ``ApplicationError.type`` of a workflow started with a spec that does not validate.
INVALID_SPEC = "InvalidSpec"
