"""``autopilot demo``: the whole adaptive loop on the local cluster, in one command.

A newcomer should see Autopilot work before trusting it with a cluster, so the demo does
what a user would, end to end, on real servers, and prints every command it runs:

1. brings up the local cluster (``DevCluster``: real kube-apiserver, etcd, Istio's CRDs and
   Autopilot's ``Canary`` CRD, Prometheus, Temporal; **simulated** pods and traffic),
   building the binaries once;
2. runs the worker (``python -m worker_main``) against the cluster's Temporal, in its own
   process, as ``autopilot worker`` would, with the Kubernetes watcher and the status mirror
   watching the demo's namespace (no webhook port);
3. with the real ``kubectl``: applies ``podinfo`` v1 and its ``Canary``, then ships a healthy
   v2 (promoted) and a v3 whose pods fail half their requests (rolled back) with ``kubectl
   set image``; the watcher starts and feeds each rollout, which the demo follows live
   (:mod:`cli.demo_rollout` does it, :mod:`cli.demo_view` draws it);
4. checks a new service in, ``kubectl apply -f demo/cart.yaml``: a Service annotated
   ``autopilot.dev/route``, whose route the autoroute operator writes and verifies by
   traffic (:mod:`cli.demo_route`), then the Temporal UI links, a summary and the commands
   to type next.

Cleaning up is exact: the demo records what it starts (cluster parts that were not running,
its worker, its Kubernetes objects, its workflows) and, at the end or on Ctrl-C, stops and
deletes exactly that (the Canary first, while its watcher runs to release it; the objects
once the worker has stopped, so no worker writes after them); data stays in the state
directory, as after ``autopilot dev down``. ``--keep`` leaves everything running to explore.
The exit code says whether the loop worked: 0 only if v2 was promoted, v3 rolled back and
the new Service routed. Without a terminal (CI, a pipe) the output is plain lines, never wrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from temporalio.client import Client

from cli import demo_rollout as rollout
from cli import demo_route as route
from cli import demo_view as view
from cli.errors import CliError, Exit, friendly, report
from cli.output import console
from cli.progress import step_display
from devcluster import paths as dev_paths
from devcluster import temporal as dev_temporal
from devcluster.cluster import ClusterError, DevCluster
from devcluster.process import ManagedProcess, port_is_free, spawn
from devcluster.state import Ports
from models.operator import Target
from service.settings import DEFAULT_TASK_QUEUE
from service.temporal import connect

#: The line ``worker_main`` prints once it polls its task queue.
WORKER_READY = "worker on task queue"
#: Seconds the worker may take to start polling.
WORKER_STARTUP_S = 90.0
#: The worker's log, in the cluster's ``logs`` directory.
WORKER_LOG = "demo-worker.log"
#: Seconds to wait for the status mirror to show the last rollout's phase on the Canary.
MIRROR_WAIT_S = 15.0
#: Everything the demo creates in its namespace: the app's, the canary's, the route's.
DEMO_OBJECTS = (*rollout.DEMO_OBJECTS, *route.ROUTE_OBJECTS)


@dataclass
class Started:
    """Everything the demo started, so that cleaning up stops exactly that.

    Attributes:
        cluster: The dev cluster.
        parts_before: PIDs of the parts that were already running (left alone).
        worker: The demo's worker process.
        namespace: The Kubernetes namespace the demo deployed into.
        workflows: IDs of the workflows its watcher started (or was to start) for the demo's
            Canary and its new Service.
    """

    cluster: DevCluster
    parts_before: dict[str, int]
    worker: ManagedProcess | None = None
    namespace: str | None = None
    workflows: set[str] = field(default_factory=set)

    def parts_started(self) -> list[str]:
        """Cluster parts running now that were not running (as the same PID) before."""
        running = self.cluster.running_processes()
        return [name for name, pid in running.items() if self.parts_before.get(name) != pid]


@friendly
def demo(
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the cluster, the worker and the rollouts running."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=1, help="Seconds between canary steps (analysis.interval)."),
    ] = 3.0,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar=dev_paths.STATE_DIR_ENV,
            help="The dev cluster's state directory (default: the one 'autopilot dev' uses).",
            show_default=False,
        ),
    ] = None,
    free_ports: Annotated[
        bool,
        typer.Option(
            "--free-ports", help="Start the cluster on free ports instead of the default ones."
        ),
    ] = False,
) -> None:
    """Run the whole adaptive loop on the local cluster: v2 promoted, then v3 rolled back.

    Brings up the local cluster (real Kubernetes API, Prometheus and Temporal; simulated pods
    and traffic), runs the worker, deploys a sample app and rolls out a healthy and a faulty
    version, live; then checks in a new Service, which gets its route. About a minute once
    the binaries are built (the first run builds them). Exits 0 only if v2 was promoted, v3
    rolled back and the new Service routed. Ctrl-C stops and deletes everything it started.

    Example: autopilot demo --keep
    """
    out = console()  # plain and unwrapped without a terminal (CI logs, docs/demo.md)
    sink = _Sink()
    cluster = _cluster(state_dir, free_ports, sink)
    started = Started(cluster, cluster.running_processes())
    outcomes: list[rollout.Outcome] = []
    routed: route.RouteOutcome | None = None
    code: Exit | None = None
    finished = False
    try:
        out.print(view.intro(bool(started.parts_before), view.short(cluster.state_dir), out))
        kubectl = rollout.Kubectl(rollout.find_kubectl(), cluster.kubeconfig_path)
        canary = rollout.canary_manifest(interval, cluster.state_dir)
        _bring_up(cluster, sink, out)
        out.print(view.commands_intro(_env_command(cluster)))
        started.namespace = _namespace(cluster, kubectl, out)
        started.worker = _start_worker(cluster, started.namespace, out)
        outcomes, routed = asyncio.run(_rollouts(started, kubectl, canary, out))
        finished = True
    except KeyboardInterrupt:
        code = Exit.INTERRUPTED
        out.print("\n[yellow]interrupted[/]: cleaning up what the demo started")
    except CliError as error:
        code = error.code
        report(error)
    finally:
        if keep and finished:
            if started.worker is not None:
                cluster.attach(started.worker)  # so 'autopilot dev down' stops it too
            _explain_keep(started, out)
        else:
            _clean_up(started, out)
            if finished:
                out.print("\nTo explore afterwards, run [bold]autopilot demo --keep[/]; then:")
                out.print(view.next_commands(_env_command(cluster), started.namespace or "demo"))
    if code is not None:
        raise typer.Exit(int(code))
    if len(outcomes) < len(rollout.RELEASES) or not all(o.as_expected for o in outcomes):
        raise CliError("the demo did not end as expected (see the summary above)")
    if routed is None or not routed.as_expected:
        raise CliError("the new Service did not get its route (see the summary above)")


class _Sink:
    """Where the cluster's progress goes: the spinner while it starts, nowhere otherwise."""

    def __init__(self) -> None:
        self.step: Callable[[str], None] = _ignore
        self.detail: Callable[[str], None] = _ignore


def _ignore(_text: str) -> None:
    """Drop a progress line."""


def _cluster(state_dir: Path | None, free_ports: bool, sink: _Sink) -> DevCluster:
    """The cluster to use; with ``free_ports``, on free ports unless some part already runs."""
    ports = None
    if free_ports and not DevCluster(state_dir).running_processes():
        ports = Ports.all_free()
    return DevCluster(
        state_dir,
        ports,
        progress=lambda text: sink.step(text),
        output=lambda text: sink.detail(text),
    )


# =============================================================================
# Cluster and worker
# =============================================================================


def _bring_up(cluster: DevCluster, sink: _Sink, out: Console) -> None:
    """``cluster.up()`` with a line per step (and Go's output while binaries build)."""
    begun = time.monotonic()
    with step_display(out, indent="  ") as (step, detail):
        sink.step, sink.detail = step, detail
        try:
            cluster.up()
        except ClusterError as error:
            hint = "add --free-ports" if "already in use" in str(error) else None
            raise CliError(str(error), hint=hint) from None
        finally:
            sink.step = sink.detail = _ignore
    out.print(f"[green]cluster up[/] in {time.monotonic() - begun:.1f}s")


def _state_flag(cluster: DevCluster) -> str:
    """`` --state-dir DIR`` for ``autopilot dev`` commands, unless the cluster is the default."""
    default = dev_paths.default_state_dir().expanduser().resolve()
    return "" if cluster.state_dir == default else f" --state-dir {view.short(cluster.state_dir)}"


def _env_command(cluster: DevCluster) -> str:
    """``eval "$(autopilot dev env ...)"``: how a shell gets the cluster the demo uses."""
    return f'eval "$(autopilot dev env{_state_flag(cluster)})"'


def _namespace(cluster: DevCluster, kubectl: rollout.Kubectl, out: Console) -> str:
    """The namespace the demo uses (see :func:`~cli.demo_rollout.pick_namespace`), created
    with kubectl when it is new."""
    with contextlib.closing(cluster.admin_api_client()) as api:
        namespace, new = rollout.pick_namespace(api)
    if new:
        _run(kubectl, ["create", "namespace", namespace], out)
    return namespace


def _run(kubectl: rollout.Kubectl, args: list[str], out: Console) -> None:
    """Print a kubectl command as a user types it, run it, and print what it says."""
    out.print(view.command(rollout.command_line(args)))
    for line in kubectl.run(args).splitlines():
        out.print(view.command_output(line))


def _watcher_env(namespace: str) -> dict[str, str]:
    """Settings of the demo worker's watchers: the Kubernetes watcher and the status mirror,
    for the demo's namespace only, with their checkpoint there (a worker of the user's keeps
    its own) and no Lease (nothing else watches that namespace), and no webhook port."""
    return {
        "AUTOPILOT_WATCH_NAMESPACES": json.dumps([namespace]),
        "AUTOPILOT_WATCH_STATE_NAMESPACE": namespace,
        "AUTOPILOT_WATCH_STATE_NAME": rollout.WATCHERS_STATE,
        "AUTOPILOT_WATCH_LEADER_ELECTION": "false",  # the only watcher of its namespace
        "AUTOPILOT_WATCH_WEBHOOKS": "false",
        "AUTOPILOT_WATCH_PROMETHEUS": "false",
        "AUTOPILOT_WATCH_STATUS_INTERVAL_S": "1",
    }


def _start_worker(cluster: DevCluster, namespace: str, out: Console) -> ManagedProcess:
    """Start ``python -m worker_main`` with its watchers on the cluster; wait until it polls.

    Raises:
        CliError: It exited or did not get ready; the message has the end of its log.
    """
    env = cluster.env()
    metrics_port = int(env["AUTOPILOT_METRICS_PORT"])
    argv = [
        sys.executable,
        "-m",
        "worker_main",
        "--address",
        env["TEMPORAL_ADDRESS"],
        "--namespace",
        rollout.TEMPORAL_NAMESPACE,
        "--task-queue",
        DEFAULT_TASK_QUEUE,
        # Another worker may serve the port Prometheus scrapes; then go without metrics.
        "--metrics-port",
        str(metrics_port if port_is_free(metrics_port) else 0),
    ]
    log = cluster.state_dir / "logs" / WORKER_LOG
    offset = log.stat().st_size if log.exists() else 0
    worker = spawn(
        "demo-worker",
        argv,
        log,
        env={**os.environ, **env, **_watcher_env(namespace), "PYTHONUNBUFFERED": "1"},
        cwd=rollout.ROOT,
    )
    deadline = time.monotonic() + WORKER_STARTUP_S
    while WORKER_READY not in _read_from(log, offset):
        if not worker.alive() or time.monotonic() > deadline:
            worker.stop()
            raise CliError(f"the worker did not start; its log ({log}):\n{worker.log_tail()}")
        time.sleep(0.2)
    out.print(
        f"[green]worker running[/] (pid {worker.pid}, task queue {DEFAULT_TASK_QUEUE!r}, "
        f"watching namespace {namespace}, log {view.short(log)})"
    )
    return worker


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


# =============================================================================
# The rollouts
# =============================================================================


async def _rollouts(
    started: Started, kubectl: rollout.Kubectl, canary: Path, out: Console
) -> tuple[list[rollout.Outcome], route.RouteOutcome]:
    """Ship v1, v2 and v3 with kubectl and follow each rollout the watcher starts; check the
    new Service in and follow its route; then the summary and the UI links."""
    cluster = started.cluster
    assert started.namespace is not None
    ui = dev_temporal.ui_url(cluster.ports["temporal_ui"])
    temporal = await connect(
        cluster.env()["TEMPORAL_ADDRESS"], rollout.TEMPORAL_NAMESPACE, identity=rollout.IDENTITY
    )
    target = Target(namespace=started.namespace, name=rollout.APP)
    workflow = target.workflow_id("canary")
    outcomes = []
    with contextlib.closing(cluster.admin_api_client()) as api:
        out.print(view.links(ui, workflow))
        for release in rollout.RELEASES:
            out.print(view.release_header(release, target.namespace))
            for args in rollout.release_commands(release, target.namespace, canary):
                _run(kubectl, args, out)
            started.workflows.add(workflow)
            revision = rollout.live_revision(api, target.namespace)
            out.print(view.waiting_for_watcher(revision))
            with view.RolloutView(out, release) as watching:
                outcome = await rollout.follow(temporal, target, revision, api, release, watching)
            out.print(view.verdict(outcome))
            outcomes.append(outcome)
        # The status mirror writes the last rollout's phase on the Canary: kubectl shows it.
        await asyncio.to_thread(
            rollout.canary_phase, api, target.namespace, outcomes[-1].state, MIRROR_WAIT_S
        )
        _run(kubectl, ["get", "canary", "-n", target.namespace], out)
    routed = await _route(started, kubectl, temporal, ui, out)
    out.print()
    out.print(view.summary(outcomes, routed, plain=not out.is_terminal))
    out.print(view.links(ui, workflow))
    return outcomes, routed


async def _route(
    started: Started, kubectl: rollout.Kubectl, temporal: Client, ui: str, out: Console
) -> route.RouteOutcome:
    """Check the new Service in with kubectl; follow the route the watcher's workflow makes,
    then show the VirtualService it wrote and how traffic verified it."""
    assert started.namespace is not None
    namespace = started.namespace
    manifest = route.route_manifest(namespace, started.cluster.state_dir)
    claim = route.requested_route(manifest).claim
    target = Target(namespace=namespace, name=route.SERVICE, kind="Service")
    workflow = target.workflow_id(route.OPERATOR)
    out.print(view.route_header(namespace, claim))
    started.workflows.add(workflow)
    since = datetime.now(UTC)
    for args in route.route_commands(namespace, manifest):
        _run(kubectl, args, out)
    out.print(view.waiting_for_route(ui, workflow))
    routed = await route.follow_route(temporal, target, claim, since, view.RouteView(out))
    out.print(view.route_verdict(routed))
    _run(kubectl, route.routes_command(namespace), out)
    out.print(view.route_verification(routed))
    return routed


# =============================================================================
# The end: --keep, or cleaning up
# =============================================================================


def _explain_keep(started: Started, out: Console) -> None:
    """Say what is still running, how to look at it and how to stop it."""
    namespace = started.namespace or "demo"
    out.print("\n[bold]Everything is still running.[/] Explore, in a shell of your own:")
    out.print(view.next_commands(_env_command(started.cluster), namespace))
    out.print("Stop it all, the demo's worker included:")
    out.print(f"  autopilot dev down{_state_flag(started.cluster)}")


def _clean_up(started: Started, out: Console) -> None:
    """Stop and delete exactly what the demo started; a second Ctrl-C does not cut it short."""
    previous = signal.signal(signal.SIGINT, lambda *_: out.print("[dim]still cleaning up…[/]"))
    done: list[str] = []
    try:
        if started.namespace is not None:
            with (
                contextlib.suppress(Exception),
                contextlib.closing(started.cluster.admin_api_client()) as api,
            ):
                if rollout.delete_canary(api, started.namespace):
                    done.append(f"deleted Canary {started.namespace}/{rollout.APP}")
        ended: list[str] = []
        _terminate(started, ended)
        # Then the worker: an activity it was running finishes (a route written after its
        # workflow was terminated) before the objects are deleted, and a workflow its
        # watcher started meanwhile (Ctrl-C right after a kubectl command) is ended next.
        if started.worker is not None and started.worker.stop():
            done.append(f"stopped the worker (pid {started.worker.pid})")
        _terminate(started, ended)
        if ended:
            done.append(f"terminated {', '.join(ended)}")
        if started.namespace is not None:
            with (
                contextlib.suppress(Exception),
                contextlib.closing(started.cluster.admin_api_client()) as api,
            ):
                rollout.delete_objects(api, started.namespace, DEMO_OBJECTS)
                done.append(f"deleted the demo's objects in namespace {started.namespace}")
        parts = started.parts_started()
        if parts:
            started.cluster.down(only=parts)
            kept = view.short(started.cluster.state_dir)
            done.append(f"stopped {', '.join(parts)} (data kept in {kept})")
    finally:
        signal.signal(signal.SIGINT, previous)
        if done:
            out.print("cleaned up: " + "; ".join(done))


def _terminate(started: Started, ended: list[str]) -> None:
    """Terminate the demo's workflows that still run; add their IDs to ``ended``."""
    if not started.workflows:
        return
    with contextlib.suppress(Exception):
        address = started.cluster.env()["TEMPORAL_ADDRESS"]
        for workflow in asyncio.run(rollout.terminate_open(address, started.workflows)):
            if workflow not in ended:
                ended.append(workflow)
