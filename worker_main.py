"""Run the Autopilot worker: every registered operator's workflow and activities.

``python worker_main.py`` (or ``autopilot worker``) with no configuration starts the
embedded Temporal dev server, persisted under the state directory, and prints the UI
address; with ``--address`` (or ``AUTOPILOT_TEMPORAL_ADDRESS`` / ``TEMPORAL_ADDRESS``) it
joins an existing Temporal. Beside the worker it runs the watchers (Kubernetes,
Prometheus, webhooks) unless told not to, and serves Prometheus metrics: the SDK's
runtime metrics plus ours (``autopilot_transitions``, ``autopilot_commands_refused``,
``autopilot_activity_failures``).

SIGTERM and SIGINT shut down gracefully: running activities finish or are cancelled,
nothing is lost, since every workflow's state lives in Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import pkgutil
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from models import versioning as process_versioning
from service.feeds import FeedError, check_feeds, sense_table
from service.heartbeats import HeartbeatInterceptor
from service.settings import TemporalSettings, WebhookSettings, WorkerSettings
from service.temporal import connect, register_search_attributes
from service.versions import deployment_config, describe_versioning, make_current

log = logging.getLogger("autopilot.worker")

#: Modules the workflow sandbox shares with the worker instead of re-importing per run:
#: pure data models with no side effects.
PASSTHROUGH_MODULES = ("pydantic", "pydantic_core", "annotated_types", "models", "yaml")

#: Where the embedded server's address is written for the CLI to find.
EMBEDDED_FILE = "embedded-temporal.json"

#: Longest a workflow task waits on one worker's sticky queue before any worker may take it.
STICKY_SCHEDULE_TO_START = timedelta(seconds=1)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker (and every replay test) runs workflows in."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def make_worker(
    client: Client,
    task_queue: str,
    workflows: Sequence[type[Any]],
    activities: Sequence[Callable[..., Any]],
    **options: Any,
) -> Worker:
    """A worker for the given operator workflows and their activities.

    Every activity heartbeats while it runs (:mod:`service.heartbeats`), and a workflow task
    waits at most ``STICKY_SCHEDULE_TO_START`` on this worker's sticky queue before any
    worker may take it: after a crash, the default 10 s was paid once per rollout.
    """
    options.setdefault("interceptors", [HeartbeatInterceptor()])
    options.setdefault("sticky_queue_schedule_to_start_timeout", STICKY_SCHEDULE_TO_START)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=workflow_runner(),
        **options,
    )


def worker_options(settings: WorkerSettings) -> dict[str, Any]:
    """The Temporal worker's options that come from the settings.

    ``max_concurrent_workflow_tasks`` caps the workflow tasks run at once. Workflow code
    holds Python's GIL, so more at once never ran faster; after a restart, Temporal's
    default of 100 let every rollout's replay share the two cores until each outran the
    10 s workflow task timeout, and the server's backoff between attempts then held a
    rollout for minutes (``docs/operations.md``).
    """
    options: dict[str, Any] = {
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks
    }
    versioning = deployment_config(settings)
    if versioning is not None:
        options["deployment_config"] = versioning
    return options


def all_activities(extra: Sequence[str] = ()) -> list[Callable[..., Any]]:
    """Every activity the worker serves: the ``ACTIVITIES`` list of every module in the
    ``activities`` package, and of every module in ``extra`` (the ``operator_modules``
    setting: an operator kept outside this project may hold its activities beside its
    machine)."""
    import activities

    names = [m.name for m in pkgutil.walk_packages(activities.__path__, "activities.")]
    found: list[Callable[..., Any]] = []
    for name in [*names, *extra]:
        module = importlib.import_module(name)
        found.extend(getattr(module, "ACTIVITIES", []))
    unique: dict[int, Callable[..., Any]] = {id(fn): fn for fn in found}
    return list(unique.values())


def all_workflows(extra: Sequence[str] = ()) -> list[type[Any]]:
    """Every registered operator workflow (those of the ``extra`` modules too)."""
    from workflows.registry import workflows

    return list(workflows(extra).values())


def support_workflows() -> list[type[Any]]:
    """Workflows the operators rely on that are not operators (the rollout-slots semaphore)."""
    from workflows.rollout_slots import RolloutSlotsWorkflow

    return [RolloutSlotsWorkflow]


def missing_activities(
    workflows: Sequence[type[Any]], activities: Sequence[Callable[..., Any]]
) -> list[str]:
    """Activity names some operator runs but no module implements."""
    from temporalio.activity import _Definition

    implemented = set()
    for fn in activities:
        definition = _Definition.from_callable(fn)
        if definition and definition.name:
            implemented.add(definition.name)
    wanted = {name for wf in workflows for name in wf.operator.activity_refs()}
    return sorted(wanted - implemented)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autopilot worker",
        description="Run the Autopilot worker (operators' workflows and activities) and watchers.",
        epilog=(
            "Example: autopilot worker --address 127.0.0.1:7233 --no-watchers\n"
            "With no address, an embedded Temporal dev server is started and its UI printed."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--address", help="Temporal frontend host:port (default: embedded server)")
    parser.add_argument("--namespace", help="Temporal namespace (default: default)")
    parser.add_argument("--task-queue", help="task queue (default: autopilot)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port, 0 to turn off")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-watchers", action="store_true", help="run the worker only")
    group.add_argument("--watchers-only", action="store_true", help="run the watchers only")
    parser.add_argument("--state-dir", type=Path, help="where the embedded server keeps its data")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[TemporalSettings, WorkerSettings]:
    """Flags override environment, which overrides defaults."""
    temporal = TemporalSettings()
    overrides: dict[str, Any] = {}
    address = args.address or temporal.address
    if address:
        overrides["address"] = address
    if args.namespace:
        overrides["namespace"] = args.namespace
    if args.task_queue:
        overrides["task_queue"] = args.task_queue
    if args.state_dir:
        overrides["state_dir"] = args.state_dir
    temporal = temporal.model_copy(update=overrides)
    worker = WorkerSettings()
    worker_overrides: dict[str, Any] = {}
    if args.metrics_port is not None:
        worker_overrides["metrics_port"] = args.metrics_port or None
    if args.no_watchers:
        worker_overrides["run_watchers"] = False
    if args.watchers_only:
        worker_overrides["run_worker"] = False
    return temporal, worker.model_copy(update=worker_overrides)


class EmbeddedServer:
    """The Temporal dev server this process started, stopped when the worker stops."""

    def __init__(self, settings: TemporalSettings, worker: WorkerSettings) -> None:
        self.state_dir = settings.state_dir / "embedded"
        self.port = worker.embedded_port
        self.ui_port = worker.embedded_ui_port
        self.process: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self) -> None:
        from devcluster.temporal import start_temporal_dev_server

        self.process = start_temporal_dev_server(self.state_dir, self.port, self.ui_port)
        (self.state_dir.parent / EMBEDDED_FILE).write_text(
            json.dumps({"address": self.address, "ui_url": self.ui_url, "pid": self.process.pid})
        )

    def stop(self) -> None:
        with suppress(FileNotFoundError):
            (self.state_dir.parent / EMBEDDED_FILE).unlink()
        if self.process is not None:
            self.process.stop()


async def run(temporal: TemporalSettings, worker_settings: WorkerSettings) -> int:
    """Connect (or start the embedded server), then run worker and watchers until stopped."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if worker_settings.metrics_port:
        Runtime.set_default(
            Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=f"127.0.0.1:{worker_settings.metrics_port}"
                    )
                )
            ),
            error_if_already_set=False,
        )

    # The operators first: a definition or a feed that cannot work refuses to start at once.
    if worker_settings.build_id is not None:
        process_versioning.enable()  # before any operator module is imported: their defn reads it
    try:
        workflows = all_workflows(worker_settings.operator_modules)
    except Exception as error:  # a user's operator module that does not import
        print(f"error: could not load the operators: {_explain(error)}", file=sys.stderr)
        return 2
    operators = {wf.operator.name: wf.operator for wf in workflows}
    if worker_settings.run_watchers:
        try:
            check_feeds(operators, WebhookSettings())
        except FeedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    embedded: EmbeddedServer | None = None
    address = temporal.address
    if address is None:
        embedded = EmbeddedServer(temporal, worker_settings)
        print(f"starting the embedded Temporal dev server (data in {embedded.state_dir}) ...")
        await asyncio.to_thread(embedded.start)
        address = embedded.address
        print(f"Temporal at {address}; Temporal UI: {embedded.ui_url}", flush=True)
    try:
        client = await connect(
            address, temporal.namespace, api_key=temporal.api_key, tls=temporal.tls
        )
        added = await register_search_attributes(client)
        if added:
            log.info("registered search attributes: %s", ", ".join(added))
        tasks = []
        if worker_settings.run_worker:
            try:
                activities = all_activities(worker_settings.operator_modules)
            except Exception as error:
                print(f"error: could not load the activities: {error!r}", file=sys.stderr)
                return 2
            missing = missing_activities(workflows, activities)
            if missing:
                print(f"error: no implementation for activities: {', '.join(missing)}")
                return 2
            served = [*workflows, *support_workflows()]
            options = worker_options(worker_settings)
            versioning = options.get("deployment_config")
            worker = make_worker(client, temporal.task_queue, served, activities, **options)
            names = ", ".join(sorted(operators))
            print(
                f"worker on task queue {temporal.task_queue!r} for operators: {names}", flush=True
            )
            print(describe_versioning(worker_settings, served), flush=True)
            tasks.append(asyncio.create_task(_run_worker(worker, stop)))
            if versioning is not None and worker_settings.make_current:
                tasks.append(asyncio.create_task(_make_current(client, worker_settings)))
        if worker_settings.run_watchers:
            table = sense_table(operators)
            tasks.append(asyncio.create_task(_run_watchers(client, temporal, stop, table)))
        if worker_settings.metrics_port:
            print(f"metrics on http://127.0.0.1:{worker_settings.metrics_port}/metrics")
        await stop.wait()
        print("stopping ...", flush=True)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("stopped with an error: %s", result)
        return 0
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _make_current(client: Client, settings: WorkerSettings) -> None:
    """Make this worker's version current once its pollers are registered, and say so."""
    if await make_current(client, settings):
        print(
            f"worker version {settings.deployment_name}.{settings.build_id} is current: new "
            "workflows start on it",
            flush=True,
        )


async def _run_worker(worker: Worker, stop: asyncio.Event) -> None:
    async with worker:
        await stop.wait()


async def _run_watchers(
    client: Client, temporal: TemporalSettings, stop: asyncio.Event, table: Sequence[Any]
) -> None:
    try:
        runner = importlib.import_module("watchers.runner")
    except ModuleNotFoundError:
        log.warning("watchers are not available in this build; running the worker only")
        return
    await runner.run_watchers(
        client=client, task_queue=temporal.task_queue, stop=stop, senses=table
    )


def _explain(error: Exception) -> str:
    """A definition error's own sentences (they name the operator); else the repr."""
    from workflows.engine import DefinitionError

    return str(error) if isinstance(error, DefinitionError) else repr(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python worker_main.py`` and ``autopilot worker``."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    temporal, worker_settings = settings_from(args)
    try:
        return asyncio.run(run(temporal, worker_settings))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Leave like the CLI does: without the interpreter teardown that Temporal's core threads
    # can crash (temporalio/sdk-python#300), once the worker has stopped what it started.
    from cli.errors import Exit, leave

    code = main()
    leave(Exit(code) if code in {member.value for member in Exit} else Exit.FAILED)
