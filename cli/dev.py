"""``autopilot dev``: build, start, inspect and stop the local cluster.

A thin shell over :class:`devcluster.cluster.DevCluster`: it turns progress into a Rich
display, statuses into a table, and every expected failure into one red line with what to do
and a non-zero exit code (set ``AUTOPILOT_DEBUG=1`` to see the traceback instead).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from cli.progress import step_display
from devcluster import build
from devcluster.cluster import DevCluster, PartStatus
from devcluster.compile_progress import LOG_INTERVAL_S, CompileStatus, Throttle
from devcluster.paths import STATE_DIR_ENV
from devcluster.prometheus import MAX_SCRAPE_INTERVAL, MIN_SCRAPE_INTERVAL
from devcluster.state import DEFAULT_PORTS, Ports
from devcluster.versions import (
    ETCD_VERSION,
    HELM_VERSION,
    ISTIO_API_VERSION,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    TOXIPROXY_VERSION,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")

console = Console(stderr=True)

dev_app = typer.Typer(
    name="dev",
    help=(
        "Run a local cluster: a real kube-apiserver + etcd with Istio's CRDs, Prometheus, "
        "the Temporal dev server (with UI), and the data-plane simulator; with --gitops, "
        "Flux's source-controller and kustomize-controller."
    ),
    epilog=(
        'Example:  autopilot dev up && eval "$(autopilot dev env)" && autopilot dev status'
        "  ...  autopilot dev down"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar=STATE_DIR_ENV,
        help="State directory (certificates, data, logs, PIDs). "
        "Default: ${XDG_STATE_HOME:-~/.local/state}/autopilot/dev.",
        show_default=False,
    ),
]


def _port_option(name: str, what: str) -> object:
    default = DEFAULT_PORTS[name.replace("-", "_")]
    fallback = f"default {default}" if default else "default: a free port"
    return typer.Option(
        f"--{name}-port",
        help=f"Port for {what} on 127.0.0.1 ({fallback}; later runs reuse the recorded port).",
        min=1,
        max=65535,
        show_default=False,
    )


def _friendly_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Print expected failures as one actionable line and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            # The reader went away (e.g. '| head'); stop quietly like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted:[/] some parts may be running; "
                "'autopilot dev status' shows them, 'autopilot dev down' stops them"
            )
            raise typer.Exit(130) from None
        except Exception as error:
            if os.environ.get("AUTOPILOT_DEBUG"):
                raise
            console.print(f"[bold red]error:[/] {error}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@dev_app.command("build")
@_friendly_errors
def build_command(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
) -> None:
    """Build (once) and cache the Kubernetes control plane, etcd, kwok, helm, Flux and Toxiproxy.

    A compile shows the packages compiled out of those not yet in Go's build cache, the time
    elapsed and an estimate: live on a terminal, a line every few seconds in a log.

    Example: autopilot dev build
    """
    started = time.monotonic()
    with step_display(console) as (step, detail):
        compiled = _compile_progress(step, detail)
        step(
            f"kube-apiserver, kube-controller-manager, kube-scheduler {KUBERNETES_VERSION}, "
            f"etcd {ETCD_VERSION} and kwok {KWOK_VERSION}"
        )
        binaries = build.ensure_binaries(step, output=detail, compiled=compiled, force=force)
        step(f"helm {HELM_VERSION}")
        helm = build.ensure_helm(step, output=detail, compiled=compiled, force=force)
        step(f"Flux {', '.join(release.what for release in build.FLUX_CONTROLLERS)}")
        flux = build.ensure_flux(step, output=detail, compiled=compiled, force=force)
        step(f"toxiproxy {TOXIPROXY_VERSION}")
        toxiproxy = build.ensure_toxiproxy(step, output=detail, compiled=compiled, force=force)
    console.print(f"[green]ready[/] in {time.monotonic() - started:.1f}s:")
    for name, path in (
        ("kube-apiserver", binaries.kube_apiserver),
        ("kube-controller-manager", binaries.kube_controller_manager),
        ("kube-scheduler", binaries.kube_scheduler),
        ("etcd", binaries.etcd),
        ("kwok", binaries.kwok),
    ):
        console.print(f"  {name:<23} {path}", highlight=False, soft_wrap=True)
    console.print(f"  helm                  {helm}", highlight=False)
    for name, path in flux.items():
        console.print(f"  {name:<20}  {path}", highlight=False, soft_wrap=True)
    console.print(f"  toxiproxy-server      {toxiproxy}", highlight=False, soft_wrap=True)


def _compile_progress(
    step: Callable[[str], None], detail: Callable[[str], None]
) -> build.CompileCallback:
    """Show compile progress live beside the step on a terminal, else as throttled lines."""
    if console.is_terminal:
        return lambda status: detail(status.describe())

    def log_line(status: CompileStatus) -> None:
        step(f"  {status.describe()}")

    return Throttle(log_line, LOG_INTERVAL_S, time.monotonic).offer


@dev_app.command()
@_friendly_errors
def up(
    state_dir: StateDirOption = None,
    apiserver_port: Annotated[int | None, _port_option("apiserver", "kube-apiserver")] = None,
    temporal_port: Annotated[int | None, _port_option("temporal", "Temporal's frontend")] = None,
    temporal_ui_port: Annotated[
        int | None, _port_option("temporal-ui", "the Temporal Web UI")
    ] = None,
    prometheus_port: Annotated[int | None, _port_option("prometheus", "Prometheus")] = None,
    sim_port: Annotated[
        int | None, _port_option("sim", "the data-plane simulator's /metrics")
    ] = None,
    autopilot_metrics_port: Annotated[
        int | None, _port_option("autopilot-metrics", "Autopilot's worker /metrics (scraped)")
    ] = None,
    etcd_port: Annotated[int | None, _port_option("etcd", "etcd clients")] = None,
    etcd_peer_port: Annotated[int | None, _port_option("etcd-peer", "etcd peers")] = None,
    install: Annotated[
        bool,
        typer.Option(help="Install Prometheus with apt-get when it is missing (needs root)."),
    ] = True,
    gitops: Annotated[
        bool | None,
        typer.Option(
            "--gitops/--no-gitops",
            help="Also run Flux (source-controller and kustomize-controller, built once) so "
            "that what is in a git repository is applied; remembered by later runs until "
            "--no-gitops, which stops them.",
            show_default=False,
        ),
    ] = None,
    scrape_interval: Annotated[
        float | None,
        typer.Option(
            min=MIN_SCRAPE_INTERVAL,
            max=MAX_SCRAPE_INTERVAL,
            help="Seconds between Prometheus's scrapes (1 at first); remembered by later "
            "runs. A running Prometheus reloads its configuration. Hundreds of services "
            "want 5 or more: each scrape carries about 93 KB per service, as Envoy's would.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start every part that is not running yet (safe to run again).

    Example: autopilot dev up --gitops --temporal-port 7233 --prometheus-port 9090
    """
    ports = Ports(
        etcd=etcd_port,
        etcd_peer=etcd_peer_port,
        apiserver=apiserver_port,
        temporal=temporal_port,
        temporal_ui=temporal_ui_port,
        prometheus=prometheus_port,
        sim=sim_port,
        autopilot_metrics=autopilot_metrics_port,
    )
    started = time.monotonic()
    with step_display(console) as (step, detail):
        cluster = DevCluster(
            state_dir, ports, progress=step, output=detail, install_prometheus=install
        )
        statuses = cluster.up(gitops=gitops, scrape_interval=scrape_interval)
    console.print(_status_table(statuses))
    console.print(
        f"[green]up[/] in {time.monotonic() - started:.1f}s; state in {cluster.state_dir}"
    )
    console.print('Point tools at it with:  [bold]eval "$(autopilot dev env)"[/]')


@dev_app.command()
@_friendly_errors
def down(
    state_dir: StateDirOption = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the cluster's data and certificates.")
    ] = False,
) -> None:
    """Stop exactly the processes 'up' started (by recorded PID); data is kept.

    Example: autopilot dev down --purge
    """
    with step_display(console) as (step, _detail):
        cluster = DevCluster(state_dir, progress=step)
        stopped = cluster.down(purge=purge)
    if stopped:
        console.print(f"[green]stopped[/] {', '.join(stopped)}")
    else:
        console.print("nothing was running")
    if purge:
        console.print(f"deleted the cluster's data in {cluster.state_dir}")


@dev_app.command()
@_friendly_errors
def status(
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show each part: state, address, PID. Exits 1 unless every part is healthy.

    Example: autopilot dev status --json
    """
    cluster = DevCluster(state_dir)
    statuses = cluster.status()
    if as_json:
        payload = [
            {
                "name": part.name,
                "state": part.state,
                "healthy": part.healthy,
                "address": part.address,
                "pid": part.pid,
                "detail": part.detail,
            }
            for part in statuses
        ]
        print(json.dumps(payload, indent=2))
    else:
        console.print(_status_table(statuses))
    needed = [part for part in statuses if part.state != "absent"]
    if not all(part.healthy for part in needed):
        if not as_json:
            console.print("not all parts are healthy: run 'autopilot dev up'")
        raise typer.Exit(1)


@dev_app.command()
@_friendly_errors
def env(state_dir: StateDirOption = None) -> None:
    """Print shell exports that point kubectl, Autopilot and tests at this cluster.

    Example: eval "$(autopilot dev env)"
    """
    cluster = DevCluster(state_dir)
    for key, value in cluster.env().items():
        print(f"export {key}={shlex.quote(value)}")


# -- display ------------------------------------------------------------------------------------


_STATE_STYLE = {"running": "green", "starting": "yellow", "stopped": "red", "absent": "dim"}


def _status_table(statuses: list[PartStatus]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Autopilot dev cluster (Kubernetes {KUBERNETES_VERSION}, "
        f"istio.io/api {ISTIO_API_VERSION})",
    )
    table.add_column("part", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for part in statuses:
        style = _STATE_STYLE.get(part.state, "")
        table.add_row(
            part.name,
            f"[{style}]{part.state}[/]" if style else part.state,
            part.address,
            str(part.pid) if part.pid else "",
            part.detail,
        )
    return table
