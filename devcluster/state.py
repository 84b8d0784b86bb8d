"""The dev cluster's memory between commands: chosen ports and started processes.

``autopilot dev up``, ``status``, ``env`` and ``down`` are separate invocations, so what one
started must be written down for the next. The file is small JSON in the state directory,
replaced atomically so that an interrupted write never loses the PIDs ``down`` needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from devcluster.process import ManagedProcess, free_port


@dataclass
class Ports:
    """TCP ports on 127.0.0.1. ``None`` means "not chosen": keep the recorded or default one.

    Attributes:
        etcd: etcd client port (default: any free port).
        etcd_peer: etcd peer port (default: any free port).
        apiserver: kube-apiserver HTTPS port.
        controller_manager, scheduler: kube-controller-manager's and kube-scheduler's
            health (HTTPS, default: any free port).
        kwok: kwok's health (default: any free port).
        temporal: Temporal frontend gRPC port.
        temporal_ui: Temporal Web UI port.
        prometheus: Prometheus HTTP port.
        sim: Port where the data-plane simulator serves ``/metrics``.
        autopilot_metrics: Port where Autopilot's worker serves ``/metrics`` (scraped only).
        flux_artifacts: source-controller's artifact server (with ``--gitops``).
        flux_source_health, flux_source_metrics: source-controller's probes and metrics.
        flux_kustomize_health, flux_kustomize_metrics: kustomize-controller's likewise.
    """

    etcd: int | None = None
    etcd_peer: int | None = None
    apiserver: int | None = None
    controller_manager: int | None = None
    scheduler: int | None = None
    kwok: int | None = None
    temporal: int | None = None
    temporal_ui: int | None = None
    prometheus: int | None = None
    sim: int | None = None
    autopilot_metrics: int | None = None
    flux_artifacts: int | None = None
    flux_source_health: int | None = None
    flux_source_metrics: int | None = None
    flux_kustomize_health: int | None = None
    flux_kustomize_metrics: int | None = None

    @classmethod
    def all_free(cls) -> Ports:
        """Return ports that are all free right now (for throwaway clusters, e.g. tests).

        Flux's are left unchosen: Flux may start long after the rest (a test session starts
        it for its first GitOps test), and an unchosen port is one ``up`` replaces when
        another program has taken it by then.
        """
        return cls(
            **{item.name: free_port() for item in fields(cls) if not item.name.startswith("flux_")}
        )

    def to_dict(self) -> dict[str, int]:
        """Return the chosen ports only."""
        return {
            item.name: value
            for item in fields(self)
            if (value := getattr(self, item.name)) is not None
        }


#: Ports used when nothing was chosen; 0 means "pick a free port once and remember it".
DEFAULT_PORTS: dict[str, int] = {
    "etcd": 0,
    "etcd_peer": 0,
    "apiserver": 6443,
    "controller_manager": 0,
    "scheduler": 0,
    "kwok": 0,
    "temporal": 7233,
    "temporal_ui": 8233,
    "prometheus": 9090,
    "sim": 9464,
    "autopilot_metrics": 9465,
    "flux_artifacts": 0,
    "flux_source_health": 0,
    "flux_source_metrics": 0,
    "flux_kustomize_health": 0,
    "flux_kustomize_metrics": 0,
}


@dataclass
class ClusterState:
    """What the state file records.

    Attributes:
        ports: Port per part name (keys of ``DEFAULT_PORTS``).
        processes: Started processes by part name.
        crds: Names of the CustomResourceDefinitions installed by ``up``.
        crds_version: ``istio.io/api`` version those CRDs came from.
        gitops: Whether ``up`` also runs Flux (chosen with ``up --gitops``, kept until
            ``up --no-gitops``).
        flux_crds: Names of the Flux CRDs installed by ``up --gitops``.
        flux_crds_version: The Flux releases those CRDs came from.
        scrape_interval: Seconds between Prometheus's scrapes (chosen with
            ``up --scrape-interval``, kept until chosen again).
    """

    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    crds: list[str] = field(default_factory=list)
    crds_version: str = ""
    gitops: bool = False
    flux_crds: list[str] = field(default_factory=list)
    flux_crds_version: str = ""
    scrape_interval: float = 1.0

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        """Read the state file; a missing file is an empty state.

        Raises:
            ValueError: The file exists but is not a state file.
        """
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a dev cluster state file: {error}") from error
        return cls(
            ports={str(name): int(port) for name, port in raw.get("ports", {}).items()},
            processes={
                str(name): ManagedProcess.from_record(record)
                for name, record in raw.get("processes", {}).items()
            },
            crds=[str(name) for name in raw.get("crds", [])],
            crds_version=str(raw.get("crds_version", "")),
            gitops=bool(raw.get("gitops", False)),
            flux_crds=[str(name) for name in raw.get("flux_crds", [])],
            flux_crds_version=str(raw.get("flux_crds_version", "")),
            scrape_interval=float(raw.get("scrape_interval", 1.0)),
        )

    def save(self, path: Path) -> None:
        """Write the state file atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "ports": self.ports,
            "processes": {name: proc.to_record() for name, proc in self.processes.items()},
            "crds": self.crds,
            "crds_version": self.crds_version,
            "gitops": self.gitops,
            "flux_crds": self.flux_crds,
            "flux_crds_version": self.flux_crds_version,
            "scrape_interval": self.scrape_interval,
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(partial, path)

    def merge(self, process: ManagedProcess) -> None:
        """Record a freshly started process, keeping its handle so the caller can reap it."""
        self.processes[process.name] = process
