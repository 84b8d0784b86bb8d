"""Turn pydantic validation errors into sentences that name the field.

Used at every edge (CLI, workflow start, webhooks) so a user reads
``spec.analysis.stepWeight: Input should be greater than 0`` instead of a traceback.
"""

from __future__ import annotations

import json

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def error_field(item: ErrorDetails) -> list[str]:
    """The part a model-wide error blames (its context's ``field``), as a location suffix.

    A model validator can only fail the whole model; a size bound
    (:func:`models.limits.check_json_size`) names the part to blame this way instead.
    """
    field = (item.get("ctx") or {}).get("field")
    return [field] if isinstance(field, str) and field else []


def shown_key(part: object) -> str:
    """A field name as a problem line shows it: quoted when it holds a control character,
    a line break or a space, so one problem stays one readable line (a key of ``"\r"`` would
    otherwise end the line)."""
    text = str(part)
    if text and text.isprintable() and " " not in text:
        return text
    return json.dumps(text)


def field_errors(error: ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message`` line per problem in ``error``."""
    lines = []
    for item in error.errors(include_input=False):
        path = ".".join(shown_key(p) for p in [*item["loc"], *error_field(item)])
        where = ".".join(p for p in (prefix, path) if p) or "(root)"
        lines.append(f"{where}: {item['msg']}")
    return lines


def path_problems(error: ValidationError, prefix: str = "") -> list[str]:
    """``spec.analysis.metrics[0].thresholdRange: set min, max or both`` lines.

    The manifest's own notation (``metrics[0]``, not ``metrics.0``), and a validator's
    message without pydantic's ``Value error,`` prefix: what a user of a manifest reads.
    """
    lines = []
    for item in error.errors(include_input=False):
        path = prefix
        for part in [*item["loc"], *error_field(item)]:
            key = shown_key(part)
            path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{key}"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path or '(spec)'}: {message}")
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
