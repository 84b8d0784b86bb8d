"""Which workflow a command is about, and how it is doing, running or finished.

A target is a workflow ID (``canary/shop/web``) or, with ``-n NAMESPACE``, a Deployment
name that ``--operator`` (``canary`` by default) turns into that ID.

:func:`snapshot` answers "how is it doing" for every kind of workflow: a running one is
asked with the ``status`` query; a completed one returns its final status as its result;
a failed or terminated one is asked too (a worker replays it), and when no worker answers,
the status is rebuilt from what Temporal itself knows (search attributes, failure).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from cli import plugin
from cli.connection import START_HINT, Endpoint
from cli.errors import CliError, Exit
from models.errors import describe
from models.operator import (
    STATUS_QUERY,
    OperatorStatus,
    Target,
    parse_workflow_id,
)
from service.commands import execution_name
from service.search_attributes import KEY_OPERATOR, KEY_PAUSED, KEY_STATE, KEY_WEIGHT

#: How long a status query may wait for a worker before the CLI falls back to describe.
QUERY_TIMEOUT = timedelta(seconds=5)

#: The operator ``-n NAMESPACE NAME`` means when ``--operator`` is not given.
DEFAULT_OPERATOR = "canary"

KubeNamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Kubernetes namespace; TARGET is then a Deployment name, not a workflow ID.",
        show_default=False,
    ),
]
OperatorOption = Annotated[
    str,
    typer.Option("--operator", help="With -n: the operator whose workflow TARGET names."),
]
TargetArgument = Annotated[
    str,
    typer.Argument(
        help="Workflow ID (operator/namespace/name), or a Deployment name with -n.",
        show_default=False,
    ),
]


def workflow_id_of(target: str, namespace: str | None, operator: str = DEFAULT_OPERATOR) -> str:
    """The workflow ID a command's TARGET (and ``-n``) names.

    Raises:
        CliError: Neither a workflow ID nor a valid namespace and name (exit code 2).
    """
    if namespace is None and "/" not in target:
        namespace = plugin.default_namespace()  # kubectl's context namespace, as the plugin
    if namespace is None:
        try:
            parse_workflow_id(target)
        except ValueError:
            raise CliError(
                f"{target!r} is not a workflow ID",
                Exit.INVALID,
                hint="give <operator>/<namespace>/<name> (e.g. canary/shop/web), "
                "or -n NAMESPACE DEPLOYMENT",
            ) from None
        return target
    if "/" in target:
        raise CliError(
            f"with -n, give the Deployment name alone, not {target!r}",
            Exit.INVALID,
            hint=f"autopilot ... -n {namespace} {target.rsplit('/', 1)[-1]}",
        )
    try:
        return Target(namespace=namespace, name=target).workflow_id(operator)
    except ValidationError as error:
        raise CliError(f"invalid target: {describe(error)}", Exit.INVALID) from None


def unknown(workflow: str) -> CliError:
    """The error for a workflow ID that does not exist."""
    return CliError(
        f"no workflow {workflow}; 'autopilot list' shows what runs", Exit.UNKNOWN_TARGET
    )


@contextmanager
def temporal_errors(endpoint: Endpoint, workflow: str | None = None) -> Iterator[None]:
    """Translate Temporal RPC errors into :class:`CliError` with the right exit code."""
    try:
        yield
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND and "namespace" in error.message.lower():
            raise CliError(
                f"Temporal at {endpoint.address} has no namespace {endpoint.namespace!r}",
                Exit.INVALID,
                hint="check --temporal-namespace / AUTOPILOT_TEMPORAL_NAMESPACE",
            ) from None
        if error.status == RPCStatusCode.NOT_FOUND and workflow is not None:
            raise unknown(workflow) from None
        if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise CliError(
                f"Temporal at {endpoint.address} did not answer: {error.message}",
                Exit.NO_TEMPORAL,
                hint=START_HINT,
            ) from None
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"Temporal at {endpoint.address}: {error.message}",
                hint=f"is --temporal-namespace {endpoint.namespace!r} right?",
            ) from None
        raise CliError(f"Temporal refused the request: {error.message}") from None


@dataclass
class Snapshot:
    """One look at one workflow: its status and Temporal's view of the execution.

    Attributes:
        status: The operator's status (queried, the final result, or rebuilt).
        execution: ``Running``, ``Completed``, ``Failed``, ``Terminated``, ...
        started_at: When the current run started.
        closed_at: When it closed, if it has.
        note: Why the status may be incomplete (e.g. no worker answered the query).
        failure: Why the workflow failed, when it did.
        url: The workflow's page in the Temporal UI.
    """

    status: OperatorStatus
    execution: str
    started_at: datetime | None
    closed_at: datetime | None
    url: str
    note: str | None = None
    failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """Whether the workflow is still open."""
        return self.execution == "Running"

    @property
    def outcome(self) -> str:
        """``running``, ``waiting``, ``succeeded`` or ``failed`` (a dead workflow failed)."""
        if not self.running and self.execution != "Completed":
            return "failed"
        return self.status.outcome

    def as_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (``-o json`` / ``-o yaml``)."""
        data = self.status.model_dump(mode="json")
        data["outcome"] = self.outcome
        data["execution"] = {
            "status": self.execution,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "failure": self.failure,
            "note": self.note,
        }
        data["ui_url"] = self.url
        return data


async def describe_workflow(
    client: Client, endpoint: Endpoint, workflow: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The handle and description of the latest run of ``workflow`` (exit 4 if none)."""
    handle = client.get_workflow_handle(workflow, result_type=OperatorStatus)
    with temporal_errors(endpoint, workflow):
        return handle, await handle.describe()


async def snapshot(client: Client, endpoint: Endpoint, workflow: str) -> Snapshot:
    """How ``workflow`` is doing now, whether it runs or has finished."""
    handle, description = await describe_workflow(client, endpoint, workflow)
    execution = execution_name(description.status)
    found = Snapshot(
        status=_rebuilt(workflow, description),
        execution=execution,
        started_at=description.start_time,
        closed_at=description.close_time,
        url=endpoint.workflow_url(workflow),
    )
    if execution == "Completed":
        with temporal_errors(endpoint, workflow):
            found.status = await handle.result()
        return found
    if execution != "Running":
        found.failure = await _failure(handle, endpoint, workflow)
    try:
        with temporal_errors(endpoint, workflow):
            found.status = await handle.query(
                STATUS_QUERY, result_type=OperatorStatus, rpc_timeout=QUERY_TIMEOUT
            )
    except (CliError, WorkflowQueryFailedError) as error:
        if isinstance(error, CliError) and error.code == Exit.UNKNOWN_TARGET:
            raise
        found.note = (
            "no worker answered the status query; shown from Temporal's records "
            "(start a worker with 'autopilot worker')"
            if execution == "Running"
            else "shown from Temporal's records (no worker replayed the workflow)"
        )
    if found.failure and not found.status.error:
        found.status = found.status.model_copy(update={"error": found.failure})
    return found


async def _failure(handle: WorkflowHandle[Any, Any], endpoint: Endpoint, workflow: str) -> str:
    try:
        with temporal_errors(endpoint, workflow):
            await handle.result()
    except WorkflowFailureError as error:
        cause: BaseException = error
        while getattr(cause, "cause", None) is not None:
            cause = getattr(cause, "cause")  # noqa: B009 - the chain's type varies
        return str(cause)
    return ""


def _rebuilt(workflow: str, description: WorkflowExecutionDescription) -> OperatorStatus:
    """An :class:`OperatorStatus` from search attributes alone (no worker needed)."""
    attributes = description.typed_search_attributes
    try:
        operator, namespace, name = parse_workflow_id(workflow)
    except ValueError:
        operator, namespace, name = description.workflow_type, "unknown", workflow
    running = description.status == WorkflowExecutionStatus.RUNNING
    completed = description.status == WorkflowExecutionStatus.COMPLETED
    data: dict[str, Any] = {}
    weight = attributes.get(KEY_WEIGHT)
    if weight is not None:
        data["canary_weight"] = weight
    try:
        target = Target(namespace=namespace, name=name)
    except ValidationError:
        target = Target.model_construct(namespace=namespace, name=name, kind="Deployment")
    return OperatorStatus(
        workflow_id=workflow,
        operator=attributes.get(KEY_OPERATOR) or operator,
        target=target,
        state=attributes.get(KEY_STATE) or "unknown",
        final=not running,
        settled=False,
        outcome="running" if running else ("succeeded" if completed else "failed"),
        paused=bool(attributes.get(KEY_PAUSED)),
        since=description.start_time or datetime.now(UTC),
        data=data,
    )
