"""The size bounds every spec shares, and the check that a spec fits them.

Why bounds at all: a spec travels in every workflow input, every activity argument and
every ``status`` answer, and Temporal refuses a payload over 2 MB (and warns from 512 KiB).
An unbounded list or string therefore fails far from where it was written, after minutes,
with a message naming neither file nor field. Each bound here is far above what a real
manifest uses (docs/operators/canary.md lists them), and is checked by the pydantic model,
so the CLI, the watchers, the CRD schema and the workflow all refuse the same spec with the
same field named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

#: A Kubernetes object name (a DNS subdomain).
MAX_NAME = 253
#: A DNS label: a Service or namespace name, a label value.
MAX_LABEL = 63
#: A label or annotation key: an optional DNS-subdomain prefix and ``/``, then a name of up to
#: 63 characters; and a label value (63 at most, possibly empty). Kubernetes' own formats, so
#: the API server never refuses metadata a spec carries.
MAX_LABEL_KEY = MAX_NAME + 1 + MAX_LABEL
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
#: A DNS label (RFC 1123): a namespace or Service name.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: A URL (a webhook, Prometheus, a notification endpoint).
MAX_URL = 2048
#: A PromQL query, a template variable, a webhook metadata value.
MAX_TEXT = 10 * 1024
#: Entries of a list or map a human writes out (metrics, webhooks, hosts, metadata, ...).
MAX_ENTRIES = 50

#: A metric's ``minSampleCount`` (requests in its window): a billion is a day of a service
#: answering 10,000 requests a second, more evidence than any window holds.
MAX_SAMPLE_COUNT = 1_000_000_000

#: A manifest file, checked before it is parsed. Why 256 KiB: ``kubectl apply`` keeps the
#: whole manifest in an annotation, and Kubernetes caps an object's annotations at 256 KiB.
MAX_MANIFEST_BYTES = 256 * 1024
#: A file ``autopilot lint`` reads (several manifests, ``---``-separated), checked before it is
#: parsed: sixteen manifests at their limit, far more than a repository keeps in one file.
MAX_LINT_FILE_BYTES = 16 * MAX_MANIFEST_BYTES
#: A spec in its JSON form (what Temporal carries in every step of the workflow).
MAX_SPEC_JSON_BYTES = 256 * 1024
#: The largest payload Temporal accepts by default (its blob size limit).
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024


def format_size(size: int) -> str:
    """``256 KiB``, ``1.8 MiB``, ``900 bytes``: sizes as people read them."""
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, "KiB"
    for larger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def _scalar_size(value: Any) -> int:
    """The length of a scalar in JSON (strings without escapes: close enough for a bound)."""
    if isinstance(value, str):
        return len(value) + 2
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int | float):
        return len(repr(value))
    return len(str(value)) + 2  # durations, enums, datetimes: written as strings


def json_size_within(value: Any, budget: int) -> int:
    """The size of ``value`` as JSON, counted only up to just past ``budget``.

    Why a budget: a YAML document can alias one node many times, so the data it expands to
    may be exponentially larger than the file. Counting stops as soon as the budget is
    spent, so the cost is bounded by the budget, never by the expanded size.
    """
    total = 0
    stack = [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, BaseModel):
            item = {name: getattr(item, name) for name in type(item).model_fields}
        if isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 4
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += _scalar_size(item)
    return total


def check_json_size(model: BaseModel, limit: int, what: str) -> None:
    """Refuse ``model`` when its JSON form passes ``limit``, naming its largest part.

    The error's context carries ``field``, the path of that part (``service.trafficPolicy``),
    which :func:`models.errors.field_errors` and ``spec_problems`` append to the location,
    so the message reads ``spec.service.trafficPolicy: ...`` like every other problem.
    """
    sizes: dict[str, int] = {}
    total = 0
    for path, part in _parts(model, ""):
        size = json_size_within(part, limit - total)
        sizes[path] = sizes.get(path, 0) + size
        total += size
        if total > limit:
            largest = max(sizes, key=lambda p: sizes[p])
            raise PydanticCustomError(
                "too_large",
                "{what} may be at most {limit} as JSON (Temporal carries it in every step); "
                "this is its largest part",
                {"field": largest, "what": what, "limit": format_size(limit)},
            )


def _parts(node: Any, path: str) -> list[tuple[str, Any]]:
    """``(path, value)`` for every field of ``node``, descending through models only.

    A model, a list of models and a map of models are split by field, index or key; any
    other value (a string, a free-form Istio object) is one part, named by its field.
    """
    if isinstance(node, BaseModel):
        found: list[tuple[str, Any]] = []
        for name, info in type(node).model_fields.items():
            if info.exclude:
                continue
            alias = info.serialization_alias or name
            found.extend(_parts(getattr(node, name), f"{path}.{alias}" if path else alias))
        return found
    if isinstance(node, list) and node and all(isinstance(i, BaseModel) for i in node):
        return [part for i, item in enumerate(node) for part in _parts(item, f"{path}[{i}]")]
    if isinstance(node, dict) and node and all(isinstance(v, BaseModel) for v in node.values()):
        return [part for key, item in node.items() for part in _parts(item, f"{path}.{key}")]
    return [(path, node)]
