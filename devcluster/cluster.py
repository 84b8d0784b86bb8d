"""One object that brings the whole local cluster up, reports on it, and takes it down.

Parts, in start order: etcd, kube-apiserver, Istio's CRDs, kube-controller-manager,
kube-scheduler and kwok with its fake nodes (see :mod:`devcluster.controllers`), the data-plane
simulator of traffic and Istio metrics (when ``devcluster/dataplane_sim`` exists), Prometheus
and the Temporal dev server; with GitOps
on (``up(gitops=True)``, ``autopilot dev up --gitops``), also Flux's CRDs, its
source-controller and its kustomize-controller (see :mod:`devcluster.flux`). Prometheus,
Temporal and Flux's controllers are started as soon as what they need is there and awaited
last: startup time is the slowest chain, not the sum.

``up`` is idempotent: a part whose recorded process is alive and healthy is left alone, so
running it twice is cheap and safe. ``down`` stops exactly the processes recorded in the
state file (checked by PID and start time) and nothing else; data stays in the state
directory unless ``purge`` is asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from devcluster import apiserver, controllers, crds, etcd, flux, paths, prometheus, temporal
from devcluster.build import Binaries, BuildError, ensure_binaries, ensure_flux
from devcluster.kubeconfig import admin_kubeconfig, api_client_from_kubeconfig, write_kubeconfig
from devcluster.pki import Pki, ensure_pki
from devcluster.process import (
    ManagedProcess,
    StartupError,
    free_port,
    http_ok,
    port_is_free,
    spawn,
    wait_until_ready,
)
from devcluster.state import DEFAULT_PORTS, ClusterState, Ports
from devcluster.versions import ISTIO_API_VERSION

#: Part names, in start order.
ETCD = "etcd"
APISERVER = "kube-apiserver"
ISTIO_CRDS = "istio-crds"
CONTROLLER_MANAGER = controllers.CONTROLLER_MANAGER
SCHEDULER = controllers.SCHEDULER
KWOK = controllers.KWOK_PART
SIM = "dataplane-sim"
PROMETHEUS = "prometheus"
TEMPORAL = "temporal"
FLUX_CRDS = "flux-crds"
SOURCE_CONTROLLER = flux.SOURCE_CONTROLLER
KUSTOMIZE_CONTROLLER = flux.KUSTOMIZE_CONTROLLER
PARTS = (
    ETCD,
    APISERVER,
    ISTIO_CRDS,
    CONTROLLER_MANAGER,
    SCHEDULER,
    KWOK,
    SIM,
    PROMETHEUS,
    TEMPORAL,
    FLUX_CRDS,
    SOURCE_CONTROLLER,
    KUSTOMIZE_CONTROLLER,
)

#: The parts that run only with GitOps on.
FLUX_PARTS = (FLUX_CRDS, SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER)

#: Module of the data-plane simulator, started only when it exists.
SIM_MODULE = "devcluster.dataplane_sim"

#: Seconds to wait for the simulator's ``/metrics``.
SIM_STARTUP_TIMEOUT = 60.0

#: Which ports each process listens on (or, for Prometheus, scrapes); the first is its health's.
_PORTS_OF = {
    ETCD: ("etcd", "etcd_peer"),
    APISERVER: ("apiserver",),
    CONTROLLER_MANAGER: ("controller_manager",),
    SCHEDULER: ("scheduler",),
    KWOK: ("kwok",),
    SIM: ("sim",),
    PROMETHEUS: ("prometheus",),
    TEMPORAL: ("temporal", "temporal_ui"),
    SOURCE_CONTROLLER: ("flux_source_health", "flux_artifacts", "flux_source_metrics"),
    KUSTOMIZE_CONTROLLER: ("flux_kustomize_health", "flux_kustomize_metrics"),
}

#: Ports that no client is configured with, so a remembered one that another program took
#: while its part was stopped is replaced by a free one: only the API server connects to
#: etcd, source-controller advertises its artifact address afresh each time it starts, and
#: the control plane's and kwok's ports serve only their health.
_UNPINNED_PORTS = (
    "etcd",
    "etcd_peer",
    "controller_manager",
    "scheduler",
    "kwok",
    *_PORTS_OF[SOURCE_CONTROLLER],
    *_PORTS_OF[KUSTOMIZE_CONTROLLER],
)

#: Files and directories a cluster creates in its state directory (what ``purge`` removes).
_STATE_ENTRIES = (
    "etcd",
    "pki",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kwok",
    "prometheus",
    "logs",
    "temporal.db",
    "temporal.db-shm",
    "temporal.db-wal",
    "flux",
    "kubeconfig",
    "cluster.json",
    ".lock",
)


class ClusterError(RuntimeError):
    """The cluster cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class PartStatus:
    """How one part of the cluster is doing.

    Attributes:
        name: Part name (one of ``PARTS``).
        state: ``running``, ``starting``, ``stopped`` or ``absent`` (not part of this checkout).
        address: Where clients reach it.
        pid: Process id, when the part is a process we started.
        detail: Extra information, e.g. why it is absent.
    """

    name: str
    state: str
    address: str
    pid: int | None = None
    detail: str = ""

    @property
    def healthy(self) -> bool:
        """Whether the part is up and answering."""
        return self.state == "running"


class DevCluster:
    """The local cluster in one state directory.

    Example:
        >>> cluster = DevCluster(Path("dev-state"), Ports.all_free())  # doctest: +SKIP
        >>> cluster.up()  # doctest: +SKIP
        >>> os.environ.update(cluster.env())  # doctest: +SKIP
        >>> cluster.down()  # doctest: +SKIP
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        ports: Ports | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        output: Callable[[str], None] | None = None,
        install_prometheus: bool = True,
    ) -> None:
        """Describe a cluster; nothing starts until :meth:`up`.

        Args:
            state_dir: Directory for state, logs and data (default:
                :func:`devcluster.paths.default_state_dir`).
            ports: Ports to use when starting parts; unset ones keep the recorded or default port.
            progress: Receives a short line before each step (for a spinner).
            output: Receives raw tool output during slow steps (e.g. Go's build output).
            install_prometheus: Allow ``apt-get install prometheus`` when it is missing.
        """
        self.state_dir = (state_dir or paths.default_state_dir()).expanduser().resolve()
        self._requested = (ports or Ports()).to_dict()
        self._progress = progress or (lambda _line: None)
        self._output = output
        self._install_prometheus = install_prometheus
        self._state = ClusterState.load(self.state_file)

    @property
    def state_file(self) -> Path:
        """The JSON file with ports and PIDs."""
        return self.state_dir / "cluster.json"

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig."""
        return self.state_dir / "kubeconfig"

    @property
    def ports(self) -> dict[str, int]:
        """Ports in effect: recorded ones, else requested ones, else defaults (0 = unchosen)."""
        return {**DEFAULT_PORTS, **self._requested, **self._state.ports}

    @property
    def gitops(self) -> bool:
        """Whether ``up`` runs Flux too (as recorded by the last ``up(gitops=...)``)."""
        self._state = _refresh(self._state, ClusterState.load(self.state_file))
        return self._state.gitops

    def up(
        self, *, gitops: bool | None = None, scrape_interval: float | None = None
    ) -> list[PartStatus]:
        """Start every part that is not already running and healthy.

        Args:
            gitops: True also runs Flux (its CRDs, source-controller, kustomize-controller);
                False stops Flux if it runs; None keeps the recorded choice (off at first).
            scrape_interval: Seconds between Prometheus's scrapes (a running Prometheus
                reloads its configuration); None keeps the recorded choice (1 s at first).

        Returns:
            The status of every part afterwards.

        Raises:
            ClusterError: A port is taken, a binary is missing, or a part failed to start.
        """
        with self._locked():
            self._state = _refresh(self._state, ClusterState.load(self.state_file))
            if gitops is not None:
                self._state.gitops = gitops
            if scrape_interval is not None:
                self._state.scrape_interval = checked_scrape_interval(scrape_interval)
            try:
                if not self._state.gitops:
                    self._stop(FLUX_PARTS)
                self._up()
            except (StartupError, BuildError, crds.CrdError) as error:
                raise ClusterError(str(error)) from error
            finally:
                self._state.save(self.state_file)
        return self.status()

    def down(self, *, only: Collection[str] | None = None, purge: bool = False) -> list[str]:
        """Stop the processes this cluster started, newest first.

        Args:
            only: Stop just these parts (e.g. the ones a test session started itself).
            purge: Also delete the cluster's data (etcd, Temporal, Prometheus, certificates).

        Returns:
            Names of the parts that were running and are now stopped.
        """
        stopped: list[str] = []
        if not self.state_dir.is_dir():
            return stopped
        with self._locked():
            self._state = _refresh(self._state, ClusterState.load(self.state_file))
            attached = [name for name in self._state.processes if name not in PARTS]
            names = [*attached, *reversed(PARTS)]
            stopped = self._stop([name for name in names if only is None or name in only])
            if purge:
                self._purge()
        return stopped

    def _stop(self, names: Collection[str]) -> list[str]:
        """Stop the recorded processes of ``names`` in that order; return those that ran."""
        stopped: list[str] = []
        for name in names:
            process = self._state.processes.pop(name, None)
            if process is None:
                continue
            self._progress(f"Stopping {name} (pid {process.pid})")
            if process.stop():
                stopped.append(name)
            self._state.save(self.state_file)
        return stopped

    def attach(self, process: ManagedProcess) -> str:
        """Record a process started beside the cluster, so that ``down`` stops it first.

        ``autopilot demo --keep`` leaves its worker running on the cluster; attached, it is
        listed by ``status`` and stopped by ``autopilot dev down`` with everything else,
        instead of outliving the servers it talks to. A second process attached under a
        name whose first one still runs is recorded as ``<name>-2`` (``-3``, ...), so that
        neither is forgotten.

        Returns:
            The name it is recorded under.

        Raises:
            ValueError: ``process.name`` is one of the cluster's own parts.
        """
        if process.name in PARTS:
            raise ValueError(f"{process.name} is a part of the cluster, not a process beside it")
        with self._locked():
            self._state = _refresh(self._state, ClusterState.load(self.state_file))
            name, number = process.name, 1
            while (taken := self._state.processes.get(name)) is not None and (
                taken.pid != process.pid and taken.alive()
            ):
                number += 1
                name = f"{process.name}-{number}"
            self._state.processes[name] = process
            self._state.save(self.state_file)
        return name

    def status(self) -> list[PartStatus]:
        """Return the status of every part, checking each one's health now.

        Attached processes (see :meth:`attach`) follow the parts while they run.
        """
        self._state = _refresh(self._state, ClusterState.load(self.state_file))
        ports = self.ports
        pki = Pki(self.state_dir / "pki")
        api_ok = pki.complete() and apiserver.ready(ports["apiserver"], pki)
        attached = [
            PartStatus(name, "running", "", process.pid, f"log: {process.log}")
            for name, process in self._state.processes.items()
            if name not in PARTS and process.alive()
        ]
        return [
            self._process_status(ETCD, etcd.client_url(ports["etcd"]), etcd.healthy),
            self._process_status(
                APISERVER,
                apiserver.server_url(ports["apiserver"]),
                lambda _port: api_ok,
            ),
            self._crd_status(api_ok),
            *(
                self._process_status(name, address, functools.partial(_part_healthy, name))
                for name, address in (
                    (
                        CONTROLLER_MANAGER,
                        f"https://127.0.0.1:{ports['controller_manager']}/healthz",
                    ),
                    (SCHEDULER, f"https://127.0.0.1:{ports['scheduler']}/healthz"),
                    (KWOK, f"{controllers.NODE_COUNT} nodes, http://127.0.0.1:{ports['kwok']}"),
                )
            ),
            self._sim_status(),
            self._process_status(PROMETHEUS, prometheus.url(ports["prometheus"]), prometheus.ready),
            self._process_status(
                TEMPORAL,
                temporal.address(ports["temporal"]),
                lambda port: (
                    temporal.frontend_ready(port) and http_ok(temporal.ui_url(ports["temporal_ui"]))
                ),
            ),
            *(self._flux_status(api_ok) if self._shows_flux() else []),
            *attached,
        ]

    def running_processes(self) -> dict[str, int]:
        """Return the PID of every recorded process that is alive, by part (or attached) name."""
        self._state = _refresh(self._state, ClusterState.load(self.state_file))
        return {name: proc.pid for name, proc in self._state.processes.items() if proc.alive()}

    def kill(self, part: str, *, timeout: float = 10.0) -> bool:
        """SIGKILL one running part, as a crash does, and wait until it is gone (reaped), so
        that :meth:`up` starts a new one. Returns whether it was running.

        For the tests and benchmarks that prove recovery; :meth:`down` stops parts gently.
        """
        pid = self.running_processes().get(part)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while part in self.running_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def env(self) -> dict[str, str]:
        """Return the environment variables that point clients at this cluster."""
        ports = self.ports
        return {
            "KUBECONFIG": str(self.kubeconfig_path),
            "TEMPORAL_ADDRESS": temporal.address(ports["temporal"]),
            "PROMETHEUS_URL": prometheus.url(ports["prometheus"]),
            "AUTOPILOT_METRICS_PORT": str(ports["autopilot_metrics"]),
        }

    def admin_api_client(self) -> client.ApiClient:
        """Return a Kubernetes client authenticated as the cluster admin."""
        return api_client_from_kubeconfig(self.kubeconfig_path)

    # -- up -----------------------------------------------------------------------------------

    def _up(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._settle_ports()
        # Refuse before starting anything, rather than leave half a cluster behind.
        for name in _PORTS_OF:
            recorded = self._state.processes.get(name)
            wanted = (name != SIM or sim_available()) and (
                name not in FLUX_PARTS or self._state.gitops
            )
            if (recorded is None or not recorded.alive()) and wanted:
                self._check_ports_free(name)
        self._progress("Checking binaries (the Kubernetes control plane, etcd, kwok)")
        binaries = ensure_binaries(self._progress, output=self._output)
        pki = ensure_pki(self.state_dir / "pki")
        ports = self._state.ports

        # Independent of Kubernetes: start now, await at the end.
        prometheus_proc = self._start_unless_running(
            PROMETHEUS,
            lambda: prometheus.start_prometheus(
                prometheus.find_prometheus(self._install_prometheus, self._progress),
                self.state_dir,
                port=ports["prometheus"],
                sim_port=ports["sim"],
                autopilot_port=ports["autopilot_metrics"],
                interval=self._state.scrape_interval,
            ),
        )
        running = self._state.processes.get(PROMETHEUS)
        if (
            prometheus_proc is None
            and running is not None
            and prometheus.write_config(
                self.state_dir,
                sim_port=ports["sim"],
                autopilot_port=ports["autopilot_metrics"],
                interval=self._state.scrape_interval,
            )
        ):
            self._progress(f"Prometheus: scraping every {self._state.scrape_interval:g} s")
            prometheus.reload(running)
        temporal_proc = self._start_unless_running(
            TEMPORAL,
            lambda: temporal.start_temporal_dev_server(
                self.state_dir, ports["temporal"], ports["temporal_ui"], wait=False
            ),
        )

        self._start_unless_running(
            ETCD,
            lambda: etcd.start_etcd(
                binaries.etcd, self.state_dir, ports["etcd"], ports["etcd_peer"]
            ),
            ready=lambda: etcd.healthy(ports["etcd"]),
            wait=lambda proc: wait_until_ready(
                proc,
                lambda: etcd.healthy(ports["etcd"]),
                timeout=etcd.STARTUP_TIMEOUT,
                what=ETCD,
            ),
        )
        self._start_unless_running(
            APISERVER,
            lambda: apiserver.start_kube_apiserver(
                binaries.kube_apiserver,
                self.state_dir,
                pki,
                port=ports["apiserver"],
                etcd_url=etcd.client_url(ports["etcd"]),
            ),
            ready=lambda: apiserver.ready(ports["apiserver"], pki),
            wait=lambda proc: wait_until_ready(
                proc,
                lambda: apiserver.ready(ports["apiserver"], pki),
                timeout=apiserver.STARTUP_TIMEOUT,
                what=APISERVER,
            ),
        )
        write_kubeconfig(
            self.kubeconfig_path, admin_kubeconfig(apiserver.server_url(ports["apiserver"]), pki)
        )

        with contextlib.closing(self.admin_api_client()) as api:
            installed = self._state.crds_version == crds.CRDS_VERSION and self._state.crds
            if not installed or crds.not_established(api, self._state.crds):
                self._progress(f"Installing the mesh CRDs ({crds.CRDS_VERSION})")
                self._state.crds = crds.install_crds(api)
                self._state.crds_version = crds.CRDS_VERSION
                self._state.save(self.state_file)

        control_plane = self._start_control_plane(binaries, pki)

        if sim_available():
            self._start_unless_running(
                SIM,
                self._start_sim,
                ready=lambda: _sim_ready(ports["sim"]),
                wait=lambda proc: wait_until_ready(
                    proc,
                    lambda: _sim_ready(ports["sim"]),
                    timeout=SIM_STARTUP_TIMEOUT,
                    what="data-plane simulator",
                ),
            )

        flux_procs = self._start_flux() if self._state.gitops else []

        if prometheus_proc is not None:
            self._progress("Waiting for Prometheus")
            prometheus.wait_prometheus(prometheus_proc, ports["prometheus"])
        if temporal_proc is not None:
            self._progress("Waiting for Temporal")
            temporal.wait_temporal(temporal_proc, ports["temporal"], ports["temporal_ui"])
        for process in control_plane:
            self._progress(f"Waiting for {process.name}")
            wait_until_ready(
                process,
                functools.partial(_part_healthy, process.name, ports[_PORTS_OF[process.name][0]]),
                timeout=controllers.STARTUP_TIMEOUT,
                what=process.name,
            )
        for process in flux_procs:
            self._progress(f"Waiting for {process.name}")
            flux.wait_ready(process, ports[_PORTS_OF[process.name][0]])

    def _start_control_plane(self, binaries: Binaries, pki: Pki) -> list[ManagedProcess]:
        """Start the controller manager, the scheduler and kwok (unless running) and make
        sure kwok's nodes exist; return the processes started now, to be awaited."""
        ports = self._state.ports
        kubeconfig = self.kubeconfig_path
        started = [
            self._start_unless_running(
                CONTROLLER_MANAGER,
                lambda: controllers.start_controller_manager(
                    binaries.kube_controller_manager,
                    self.state_dir,
                    kubeconfig,
                    pki,
                    port=ports["controller_manager"],
                ),
            ),
            self._start_unless_running(
                SCHEDULER,
                lambda: controllers.start_scheduler(
                    binaries.kube_scheduler, self.state_dir, kubeconfig, port=ports["scheduler"]
                ),
            ),
            self._start_unless_running(
                KWOK,
                lambda: controllers.start_kwok(
                    binaries.kwok,
                    self.state_dir,
                    kubeconfig,
                    controllers.write_kwok_config(self.state_dir),
                    port=ports["kwok"],
                ),
            ),
        ]
        with contextlib.closing(self.admin_api_client()) as api:
            controllers.ensure_nodes(api)
        return [process for process in started if process is not None]

    def _start_flux(self) -> list[ManagedProcess]:
        """Install Flux's CRDs and start its two controllers (unless running); return both."""
        ports = self._state.ports
        self._progress("Checking binaries (Flux source-controller, kustomize-controller)")
        binaries = ensure_flux(self._progress, output=self._output)
        with contextlib.closing(self.admin_api_client()) as api:
            installed = self._state.flux_crds_version == flux.CRD_VERSIONS and self._state.flux_crds
            if not installed or crds.not_established(api, self._state.flux_crds):
                self._progress(f"Installing Flux CRDs ({flux.CRD_VERSIONS})")
                self._state.flux_crds = flux.install_flux_crds(api)
                self._state.flux_crds_version = flux.CRD_VERSIONS
                self._state.save(self.state_file)

            def start_source() -> ManagedProcess:
                return flux.start_source_controller(
                    binaries[SOURCE_CONTROLLER],
                    self.state_dir,
                    flux.controller_kubeconfig(api, SOURCE_CONTROLLER),
                    artifacts_port=ports["flux_artifacts"],
                    metrics_port=ports["flux_source_metrics"],
                    health_port=ports["flux_source_health"],
                )

            def start_kustomize() -> ManagedProcess:
                return flux.start_kustomize_controller(
                    binaries[KUSTOMIZE_CONTROLLER],
                    self.state_dir,
                    flux.controller_kubeconfig(api, KUSTOMIZE_CONTROLLER),
                    metrics_port=ports["flux_kustomize_metrics"],
                    health_port=ports["flux_kustomize_health"],
                )

            self._start_unless_running(SOURCE_CONTROLLER, start_source)
            self._start_unless_running(KUSTOMIZE_CONTROLLER, start_kustomize)
        return [self._state.processes[name] for name in (SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER)]

    def _start_unless_running(
        self,
        name: str,
        start: Callable[[], ManagedProcess],
        *,
        ready: Callable[[], bool] | None = None,
        wait: Callable[[ManagedProcess], None] | None = None,
    ) -> ManagedProcess | None:
        """Start part ``name`` unless its recorded process is alive.

        Args:
            name: Part name.
            start: Starts the process (it may or may not wait for readiness itself).
            ready: Whether the part answers now.
            wait: Blocks until the part answers; used after a start, and for a recorded
                process that is alive but not answering yet.

        Returns:
            The newly started process, or None if it was already running.
        """
        recorded = self._state.processes.get(name)
        if recorded is not None and recorded.alive():
            if ready is not None and wait is not None and not ready():
                self._progress(f"Waiting for {name} (already started, pid {recorded.pid})")
                wait(recorded)
            return None
        self._state.processes.pop(name, None)
        self._check_ports_free(name)
        self._progress(f"Starting {name}")
        process = start()
        self._state.merge(process)
        self._state.save(self.state_file)
        if wait is not None:
            wait(process)
        return process

    def _start_sim(self) -> ManagedProcess:
        ports = self._state.ports
        package_root = str(Path(__file__).resolve().parent.parent)
        pythonpath = os.pathsep.join(
            part for part in (package_root, os.environ.get("PYTHONPATH", "")) if part
        )
        argv = [
            sys.executable,
            "-m",
            SIM_MODULE,
            "--kubeconfig",
            str(self.kubeconfig_path),
            "--metrics-port",
            str(ports["sim"]),
        ]
        return spawn(
            SIM,
            argv,
            self.state_dir / "logs" / "dataplane-sim.log",
            env=dict(os.environ, PYTHONPATH=pythonpath, PYTHONUNBUFFERED="1"),
        )

    def _settle_ports(self) -> None:
        """Fix the ports for this run and record them.

        While any recorded process is alive, the recorded ports stand: asking for a different
        one is an error. Otherwise requested ports win over recorded ones, which win over
        defaults. A 0 becomes a free port, and so does a remembered etcd port that someone
        else took meanwhile (nobody but the API server connects to etcd), and a Flux
        controller's while that controller is stopped (see ``_UNPINNED_PORTS``).
        """
        running = [name for name, proc in self._state.processes.items() if proc.alive()]
        recorded = self._state.ports
        if running:
            for key, value in self._requested.items():
                if key in recorded and recorded[key] != value:
                    raise ClusterError(
                        f"the cluster in {self.state_dir} is running ({', '.join(running)}) "
                        f"with {_option(key)} {recorded[key]}, not {value}: run "
                        "'autopilot dev down' first to change ports"
                    )
            settled = {**DEFAULT_PORTS, **recorded}
        else:
            settled = {**DEFAULT_PORTS, **recorded, **self._requested}
        stopped = [name for name in _PORTS_OF if name not in running]
        movable = [key for key in _UNPINNED_PORTS if key not in self._requested]
        for key in movable:
            # etcd's port moves only while nothing runs: the API server was started with it.
            users = (ETCD, APISERVER) if key.startswith("etcd") else (_part_of_port(key),)
            moved_on = settled[key] and not port_is_free(settled[key])
            if moved_on and all(user in stopped for user in users):
                settled[key] = 0
        for key, value in settled.items():
            if value == 0:
                settled[key] = free_port()
        self._state.ports = settled
        self._state.save(self.state_file)

    def _check_ports_free(self, name: str) -> None:
        for key in _PORTS_OF.get(name, ()):
            port = self._state.ports[key]
            if not port_is_free(port):
                raise ClusterError(
                    f"cannot start {name}: port {port} on 127.0.0.1 is already in use by "
                    f"another program; choose another with {_option(key)} (after "
                    "'autopilot dev down'), or stop that program"
                )

    # -- status -------------------------------------------------------------------------------

    def _process_status(
        self, name: str, address: str, healthy: Callable[[int], bool]
    ) -> PartStatus:
        process = self._state.processes.get(name)
        port = self.ports[_PORTS_OF[name][0]]
        if process is None or not process.alive():
            # Something may answer on the port without being ours; say so rather than claim it.
            detail = "" if port_is_free(port) else f"port {port} is used by another program"
            return PartStatus(name, "stopped", address, None, detail)
        if healthy(port):
            detail = f"UI {temporal.ui_url(self.ports['temporal_ui'])}" if name == TEMPORAL else ""
            return PartStatus(name, "running", address, process.pid, detail)
        return PartStatus(name, "starting", address, process.pid, f"log: {process.log}")

    def _crd_status(
        self,
        api_ok: bool,
        part: str = ISTIO_CRDS,
        names: list[str] | None = None,
        address: str = f"istio.io/api {ISTIO_API_VERSION}",
    ) -> PartStatus:
        names = self._state.crds if names is None else names
        if not api_ok:
            return PartStatus(part, "stopped", address, detail="kube-apiserver is down")
        if not names:
            return PartStatus(part, "stopped", address, detail="not installed")
        try:
            with contextlib.closing(self.admin_api_client()) as api:
                pending = crds.not_established(api, names)
        except Exception as error:
            return PartStatus(part, "stopped", address, detail=str(error))
        if pending:
            return PartStatus(part, "starting", address, detail=f"{len(pending)} pending")
        return PartStatus(part, "running", address, detail=f"{len(names)} Established")

    def _shows_flux(self) -> bool:
        """Flux's parts are listed while GitOps is on or one of its controllers still runs."""
        return self._state.gitops or any(name in self._state.processes for name in FLUX_PARTS)

    def _flux_status(self, api_ok: bool) -> list[PartStatus]:
        ports = self.ports
        return [
            self._crd_status(api_ok, FLUX_CRDS, self._state.flux_crds, flux.CRD_ADDRESS),
            self._process_status(
                SOURCE_CONTROLLER, flux.artifact_server_url(ports["flux_artifacts"]), flux.ready
            ),
            self._process_status(
                KUSTOMIZE_CONTROLLER, flux.health_url(ports["flux_kustomize_health"]), flux.ready
            ),
        ]

    def _sim_status(self) -> PartStatus:
        address = f"http://127.0.0.1:{self.ports['sim']}/metrics"
        if not sim_available() and SIM not in self._state.processes:
            return PartStatus(SIM, "absent", address, detail=f"no {SIM_MODULE} in this checkout")
        return self._process_status(SIM, address, _sim_ready)

    # -- helpers ------------------------------------------------------------------------------

    def _purge(self) -> None:
        for entry in _STATE_ENTRIES:
            path = self.state_dir / entry
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()
        self._state = ClusterState()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise ``up``/``down`` on one state directory across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def sim_available() -> bool:
    """Return whether the data-plane simulator can be run with ``python -m`` from this checkout.

    Checked on disk, without importing it: it may be a module or a package with ``__main__``.
    """
    here = Path(__file__).resolve().parent
    return (here / "dataplane_sim.py").is_file() or (
        here / "dataplane_sim" / "__main__.py"
    ).is_file()


def checked_scrape_interval(seconds: float) -> float:
    """``seconds`` if Prometheus may scrape that often here.

    Raises:
        ClusterError: It is outside the bounds, naming them.
    """
    low, high = prometheus.MIN_SCRAPE_INTERVAL, prometheus.MAX_SCRAPE_INTERVAL
    if not low <= seconds <= high:
        raise ClusterError(
            f"scrape interval must be between {low:g} and {high:g} seconds, got {seconds:g}"
        )
    return seconds


def _part_healthy(name: str, port: int) -> bool:
    """Whether the controller manager, the scheduler or kwok answers its health check."""
    return controllers.kwok_healthy(port) if name == KWOK else controllers.healthy(port)


def _sim_ready(port: int) -> bool:
    return http_ok(f"http://127.0.0.1:{port}/metrics")


def _refresh(current: ClusterState, on_disk: ClusterState) -> ClusterState:
    """Prefer in-memory process handles (they can reap children) over re-read records."""
    for name, process in current.processes.items():
        if name in on_disk.processes and on_disk.processes[name].pid == process.pid:
            on_disk.processes[name] = process
    return on_disk


def _part_of_port(key: str) -> str:
    return next(name for name, keys in _PORTS_OF.items() if key in keys)


def _option(key: str) -> str:
    return f"--{key.replace('_', '-')}-port"
