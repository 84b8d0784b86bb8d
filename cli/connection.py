"""Where the CLI finds Temporal, and how it connects.

The user should not have to say where Temporal is when Autopilot started it. In order:

1. ``--address`` on the command line;
2. ``AUTOPILOT_TEMPORAL_ADDRESS``, then ``TEMPORAL_ADDRESS`` (what ``autopilot dev env``
   exports);
3. the running dev cluster (``autopilot dev up``): the Temporal port recorded in its state;
4. the embedded server ``autopilot worker`` starts when no address is configured: it writes
   ``embedded-temporal.json`` (``{"address": ..., "ui_url": ...}``) in the state directory.

The Temporal UI address comes with the server when Autopilot started it; otherwise from
``AUTOPILOT_TEMPORAL_UI_URL``, else it is guessed (port 8233 on the frontend's host).
Every client uses :func:`service.temporal.connect`, i.e. the pydantic data converter that
the workflows expect.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from cli.errors import CliError, Exit
from devcluster import paths as dev_paths
from devcluster.state import ClusterState
from models.errors import describe
from service import ui_links
from service.settings import TemporalSettings

if TYPE_CHECKING:  # the Temporal SDK is imported by the commands that connect, not before
    from temporalio.client import Client
    from temporalio.runtime import Runtime

#: The file an embedded Temporal server's address is written to, in ``state_dir``.
EMBEDDED_FILE = "embedded-temporal.json"

#: What to run when no server is reachable.
START_HINT = (
    "start one with 'autopilot dev up' (local cluster with Temporal) or 'autopilot worker' "
    "(embedded Temporal), or point --address / TEMPORAL_ADDRESS at yours"
)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Temporal frontend host:port. Default: AUTOPILOT_TEMPORAL_ADDRESS, "
        "TEMPORAL_ADDRESS, the running dev cluster, or the embedded server.",
        show_default=False,
        rich_help_panel="Temporal",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--temporal-namespace",
        help="Temporal namespace. Default: AUTOPILOT_TEMPORAL_NAMESPACE or 'default'.",
        show_default=False,
        rich_help_panel="Temporal",
    ),
]


@dataclass(frozen=True)
class Endpoint:
    """A Temporal server to talk to, and where its address came from (for messages)."""

    address: str
    namespace: str
    ui_url: str
    source: str
    settings: TemporalSettings

    def workflow_url(self, workflow_id: str) -> str:
        """The Temporal UI page of one workflow."""
        return ui_links.workflow_page(self.ui_url, self.namespace, workflow_id)

    def list_url(self, query: str) -> str:
        """The Temporal UI's workflow list filtered by a visibility query."""
        return ui_links.list_page(self.ui_url, self.namespace, query)


def settings() -> TemporalSettings:
    """``TemporalSettings`` from the environment, or a :class:`CliError` naming the variable."""
    try:
        return TemporalSettings()
    except ValidationError as error:
        raise CliError(
            f"invalid AUTOPILOT_TEMPORAL_* setting: {describe(error)}", Exit.INVALID
        ) from None


def _dev_cluster() -> tuple[str, str] | None:
    """Address and UI of the dev cluster's Temporal, if its recorded process is alive."""
    from devcluster import temporal as dev_temporal

    try:
        state = ClusterState.load(dev_paths.default_state_dir() / "cluster.json")
    except (OSError, ValueError):
        return None
    process = state.processes.get("temporal")
    if process is None or not process.alive() or "temporal" not in state.ports:
        return None
    ui_port = state.ports.get("temporal_ui")
    ui = dev_temporal.ui_url(ui_port) if ui_port else ""
    return dev_temporal.address(state.ports["temporal"]), ui


def _embedded(state_dir: Path) -> tuple[str, str, Path] | None:
    """Address and UI of the embedded server ``autopilot worker`` recorded, if any."""
    path = state_dir / EMBEDDED_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("address"), str):
        return None
    pid = raw.get("pid")
    if isinstance(pid, int) and not _alive(pid):
        return None  # left behind by a worker that did not stop cleanly
    ui = raw.get("ui_url")
    return raw["address"], ui if isinstance(ui, str) else "", path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _guess_ui(address: str) -> str:
    host = address.rsplit(":", 1)[0] or "127.0.0.1"
    if host.endswith(".tmprl.cloud"):
        return "https://cloud.temporal.io"
    return f"http://{host}:8233"


def resolve(address: str | None = None, namespace: str | None = None) -> Endpoint:
    """Decide which Temporal server to use (see the module docstring for the order).

    Raises:
        CliError: No server is configured or recorded as running (exit code 5).
    """
    config = settings()
    dev = _dev_cluster()
    embedded = _embedded(config.state_dir)
    known_uis = {found[0]: found[1] for found in (dev, embedded) if found is not None}
    ui: str | None = None
    if address:
        source = "--address"
    elif config.address:
        address, source = config.address, "AUTOPILOT_TEMPORAL_ADDRESS or TEMPORAL_ADDRESS"
    elif dev is not None:
        (address, ui), source = dev, "the running dev cluster ('autopilot dev status')"
    elif embedded is not None:
        address, ui, path = embedded
        source = f"the embedded server recorded in {path} (is 'autopilot worker' running?)"
    else:
        raise CliError(
            "no Temporal server configured, and no dev cluster or embedded server is running",
            Exit.NO_TEMPORAL,
            hint=START_HINT,
        )
    ui_url = config.ui_url or ui or known_uis.get(address, "") or _guess_ui(address)
    return Endpoint(
        address=address,
        namespace=namespace or config.namespace,
        ui_url=ui_url,
        source=source,
        settings=config,
    )


@functools.cache
def quiet_runtime() -> Runtime:
    """The Temporal runtime of the CLI's clients: the SDK core writes no logs of its own.

    Why: the core prints warnings (a payload near its limit, a retried call) as raw,
    colour-coded log lines on the terminal; every failure the CLI reports is already one
    line of its own that says what to do.
    """
    from temporalio.runtime import Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(logging=None))


async def open_client(endpoint: Endpoint, identity: str | None = None) -> Client:
    """Connect to ``endpoint``; an unreachable server is a :class:`CliError` (exit 5)."""
    from service.temporal import connect

    try:
        return await connect(
            endpoint.address,
            endpoint.namespace,
            api_key=endpoint.settings.api_key,
            tls=endpoint.settings.tls,
            identity=identity,
            runtime=quiet_runtime(),
        )
    except Exception as error:
        reason = str(error)
        for marker in ("Connection refused", "dns error", "timed out", "certificate"):
            if marker.lower() in reason.lower():
                reason = marker.lower()
                break
        raise CliError(
            f"cannot reach Temporal at {endpoint.address} (from {endpoint.source}): {reason}",
            Exit.NO_TEMPORAL,
            hint=START_HINT,
        ) from None
