"""Recorded canary histories, replayed by ``test_canary_replay.py``.

Set ``AUTOPILOT_RECORD_HISTORIES=1`` and run the end-to-end test that records one (for
example ``pytest tests/canary/test_canary_e2e.py -k healthy``) ONLY when a change to the
canary machine is meant to change what running rollouts do, and say so in the commit.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).parent / "histories"


async def record_if_asked(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Write the workflow's history to ``histories/<name>.json`` when recording is on."""
    if os.environ.get("AUTOPILOT_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    path = HISTORIES / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


def decoded(node: Any) -> str:
    """Every payload of a history as text (Temporal keeps payload data base64-encoded)."""
    if isinstance(node, dict):
        parts = [decoded(value) for key, value in node.items() if key != "data"]
        data = node.get("data")
        if isinstance(data, str):
            parts.append(base64.b64decode(data).decode(errors="replace"))
        return "\n".join(parts)
    if isinstance(node, list):
        return "\n".join(decoded(item) for item in node)
    return str(node)
