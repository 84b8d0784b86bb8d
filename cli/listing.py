"""``autopilot list``: every operator instance, from Temporal's visibility store.

The engine upserts typed search attributes on every transition (``AutopilotOperator``,
``AutopilotState``, ``AutopilotNamespace``, ``AutopilotTarget``, ``CanaryWeight``, ...), so
listing is one visibility query, the same one the Temporal UI accepts: the command prints
it, with a link to the UI's filtered list.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text
from temporalio.client import WorkflowExecution

from cli.connection import AddressOption, Endpoint, NamespaceOption, open_client, resolve
from cli.errors import CliError, Exit, friendly, run
from cli.output import Format, OutputOption, console, dump
from cli.targets import execution_name, temporal_errors
from cli.views import ago
from service.search_attributes import KEY_OPERATOR, KEY_PAUSED, KEY_STATE, KEY_TARGET, KEY_WEIGHT

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def visibility_query(
    operator: str | None, state: str | None, namespace: str | None, everything: bool
) -> str:
    """The Temporal visibility query for these filters.

    Without ``--all`` or ``--state`` only running workflows are listed: a finished one is
    history, and ``--state Succeeded`` asks for it explicitly.

    Raises:
        CliError: A filter value that cannot be a name (exit code 2).
    """
    clauses = ["AutopilotOperator IS NOT NULL"]
    for name, value, attribute in (
        ("--operator", operator, "AutopilotOperator"),
        ("--state", state, "AutopilotState"),
        ("--namespace", namespace, "AutopilotNamespace"),
    ):
        if value is None:
            continue
        if not _SAFE_VALUE.match(value):
            raise CliError(f"{name} {value!r} is not a valid name", Exit.INVALID)
        clauses.append(f"{attribute} = '{value}'")
    if operator is not None:
        clauses.pop(0)
    if not everything and state is None:
        clauses.append("ExecutionStatus = 'Running'")
    return " AND ".join(clauses)


def _row(execution: WorkflowExecution) -> dict[str, Any]:
    attributes = execution.typed_search_attributes
    return {
        "workflow_id": execution.id,
        "operator": attributes.get(KEY_OPERATOR),
        "target": attributes.get(KEY_TARGET),
        "state": attributes.get(KEY_STATE),
        "paused": bool(attributes.get(KEY_PAUSED)),
        "canary_weight": attributes.get(KEY_WEIGHT),
        "execution": execution_name(execution.status),
        "started_at": execution.start_time.isoformat() if execution.start_time else None,
        "closed_at": execution.close_time.isoformat() if execution.close_time else None,
    }


async def _list(endpoint: Endpoint, query: str, limit: int) -> list[WorkflowExecution]:
    client = await open_client(endpoint)
    found: list[WorkflowExecution] = []
    with temporal_errors(endpoint):
        try:
            async for execution in client.list_workflows(query, limit=limit):
                found.append(execution)
        except Exception as error:
            if "AutopilotOperator" in str(error) or "search attribute" in str(error).lower():
                raise CliError(
                    f"namespace {endpoint.namespace!r} at {endpoint.address} does not know "
                    "Autopilot's search attributes",
                    hint="'autopilot worker' registers them when it starts",
                ) from None
            raise
    return found


@friendly
def list_command(
    operator: Annotated[
        str | None, typer.Option("--operator", help="Only this operator, e.g. canary.")
    ] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only machines in this state (any status).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Only targets in this Kubernetes namespace."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", "-a", help="Include finished workflows.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    output: OutputOption = Format.TABLE,
    address: AddressOption = None,
    temporal_namespace: NamespaceOption = None,
) -> None:
    """List operator instances (running ones unless --all or --state), newest first."""
    query = visibility_query(operator, state, namespace, everything)
    endpoint = resolve(address, temporal_namespace)
    rows = [_row(e) for e in run(_list(endpoint, query, limit))]
    if not output.human:
        dump(rows, output)
        return
    out = console(output)
    if not rows:
        out.print(f"no operator workflows match [dim]{query}[/]")
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("workflow", no_wrap=True)
    table.add_column("operator")
    table.add_column("target")
    table.add_column("state")
    table.add_column("weight", justify="right")
    table.add_column("workflow status")
    table.add_column("started", no_wrap=True)
    for row in rows:
        state_text = Text(row["state"] or "?")
        if row["paused"] and row["execution"] == "Running":
            state_text.append(" (paused)", style="yellow")
        weight = row["canary_weight"]
        table.add_row(
            row["workflow_id"],
            row["operator"] or "",
            row["target"] or "",
            state_text,
            f"{weight}%" if weight is not None else "",
            row["execution"],
            ago(_time(row["started_at"])),
        )
    out.print(table)
    out.print(f"[dim]{len(rows)} shown; query: {query}[/]")
    out.print(f"[dim]in the Temporal UI: {endpoint.list_url(query)}[/]")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
