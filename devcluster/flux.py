"""Run Flux's real ``source-controller`` and ``kustomize-controller`` against the local cluster.

What is merged in git is what a GitOps cluster runs; to prove that Autopilot's pull requests
end up applied (and that Flux does not fight what Autopilot changes at runtime), the dev
cluster runs the same two controllers users run, built from their release modules
(:data:`devcluster.build.FLUX_CONTROLLERS`), with the CRDs of those releases.

They run as processes on loopback, like the other parts, configured for one machine:

* no leader election (one replica), every namespace watched;
* metrics and health endpoints on free loopback ports (readiness is ``/readyz``);
* ``source-controller`` stores artifacts under the state directory and serves them on a
  loopback port that it also advertises (``--storage-adv-addr``), so the artifact URL it
  writes into ``GitRepository.status`` is one ``kustomize-controller`` can fetch over HTTP;
* each runs as its own ServiceAccount in ``flux-system`` (a bound token in its kubeconfig),
  bound to ``cluster-admin`` as Flux's own install binds ``kustomize-controller``; no
  impersonation is configured, so a Kustomization needs no ``serviceAccountName``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from devcluster import crds
from devcluster.build import FLUX_CONTROLLERS, FLUX_KUSTOMIZE_CONTROLLER, FLUX_SOURCE_CONTROLLER
from devcluster.kubeconfig import service_account_identity, write_kubeconfig
from devcluster.process import ManagedProcess, http_ok, spawn, wait_until_ready
from devcluster.versions import FLUX_CRD_DIR

#: Part names, as ``autopilot dev status`` lists them.
SOURCE_CONTROLLER = FLUX_SOURCE_CONTROLLER.name
KUSTOMIZE_CONTROLLER = FLUX_KUSTOMIZE_CONTROLLER.name

#: Namespace of the controllers' ServiceAccounts (and ``RUNTIME_NAMESPACE``), as in Flux.
NAMESPACE = "flux-system"

#: ClusterRoleBinding that gives both controllers ``cluster-admin`` (Flux's own name for it).
CLUSTER_ROLE_BINDING = "cluster-reconciler-flux-system"

#: Lifetime of a controller's token; a fresh one is written each time the controller starts.
TOKEN_SECONDS = 30 * 24 * 3600

#: Seconds to wait for a controller's ``/readyz``.
STARTUP_TIMEOUT = 120.0

#: What identifies the pinned CRDs in the state file (a new pin reinstalls them).
CRD_VERSIONS = ", ".join(release.what for release in FLUX_CONTROLLERS)

#: Where ``autopilot dev status`` says the CRDs came from (short: the table is narrow).
CRD_ADDRESS = "fluxcd " + " + ".join(release.version for release in FLUX_CONTROLLERS)


def crd_files() -> list[Path]:
    """Return the CRD files of both pinned controller modules (``config/crd/bases``).

    Raises:
        CrdError: Go is missing, a module could not be downloaded, or it holds no CRDs.
    """
    files: list[Path] = []
    for release in FLUX_CONTROLLERS:
        module = f"{release.module}@{release.version}"
        found = sorted((crds.module_dir(module) / FLUX_CRD_DIR).glob("*.yaml"))
        if not found:
            raise crds.CrdError(f"{module} has no CRDs in {FLUX_CRD_DIR}")
        files += found
    return files


def install_flux_crds(api: client.ApiClient) -> list[str]:
    """Apply Flux's CRDs (GitRepository, Kustomization and the other sources) and wait for them.

    Every CRD of both modules is installed, not only the two the tests use: each controller
    watches all of its kinds and would not start without them.

    Raises:
        CrdError: The CRDs could not be fetched, applied, or did not become Established.
    """
    return crds.apply_crds(api, [crd for path in crd_files() for crd in crds.load_crds(path)])


def expected_crd_names() -> list[str]:
    """Return the names of the pinned Flux CRDs (reads Go's module cache)."""
    return [str(crd["metadata"]["name"]) for path in crd_files() for crd in crds.load_crds(path)]


def health_url(port: int) -> str:
    """Return the readiness URL of a controller whose health endpoint is on ``port``."""
    return f"http://127.0.0.1:{port}/readyz"


def ready(port: int) -> bool:
    """Return whether the controller with its health endpoint on ``port`` is ready."""
    return http_ok(health_url(port))


def artifact_server_url(port: int) -> str:
    """Return the base URL of source-controller's artifact server on ``port``."""
    return f"http://127.0.0.1:{port}"


def controller_kubeconfig(admin: client.ApiClient, name: str) -> dict[str, Any]:
    """Return a kubeconfig that acts as controller ``name``'s ServiceAccount in ``flux-system``.

    Creates the namespace, the ServiceAccount and the ``cluster-admin`` binding when missing.
    """
    core = client.CoreV1Api(admin)
    with _existing_is_fine():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    subjects = [
        client.RbacV1Subject(kind="ServiceAccount", name=controller, namespace=NAMESPACE)
        for controller in (SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER)
    ]
    with _existing_is_fine():
        client.RbacAuthorizationV1Api(admin).create_cluster_role_binding(
            client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=CLUSTER_ROLE_BINDING),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
                ),
                subjects=subjects,
            )
        )
    identity = service_account_identity(admin, NAMESPACE, name, expiration_seconds=TOKEN_SECONDS)
    return identity.kubeconfig


def start_source_controller(
    binary: Path,
    state_dir: Path,
    kubeconfig: Mapping[str, Any],
    *,
    artifacts_port: int,
    metrics_port: int,
    health_port: int,
) -> ManagedProcess:
    """Start source-controller without waiting for it (see :func:`wait_ready`).

    Raises:
        StartupError: The binary could not be started.
    """
    storage = state_dir / "flux" / "artifacts"
    storage.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{artifacts_port}"
    return _spawn(
        SOURCE_CONTROLLER,
        binary,
        state_dir,
        kubeconfig,
        [
            f"--storage-path={storage}",
            f"--storage-addr={address}",
            f"--storage-adv-addr={address}",
            f"--metrics-addr=127.0.0.1:{metrics_port}",
            f"--health-addr=127.0.0.1:{health_port}",
        ],
    )


def start_kustomize_controller(
    binary: Path,
    state_dir: Path,
    kubeconfig: Mapping[str, Any],
    *,
    metrics_port: int,
    health_port: int,
) -> ManagedProcess:
    """Start kustomize-controller without waiting for it (see :func:`wait_ready`).

    Raises:
        StartupError: The binary could not be started.
    """
    return _spawn(
        KUSTOMIZE_CONTROLLER,
        binary,
        state_dir,
        kubeconfig,
        [
            f"--metrics-addr=127.0.0.1:{metrics_port}",
            f"--health-addr=127.0.0.1:{health_port}",
        ],
    )


def wait_ready(process: ManagedProcess, health_port: int) -> None:
    """Wait until the controller answers ``/readyz``.

    Raises:
        StartupError: It exited or was not ready in time.
    """
    wait_until_ready(
        process, lambda: ready(health_port), timeout=STARTUP_TIMEOUT, what=process.name
    )


def _spawn(
    name: str,
    binary: Path,
    state_dir: Path,
    kubeconfig: Mapping[str, Any],
    flags: list[str],
) -> ManagedProcess:
    """Start a controller with the flags both share for a local run."""
    directory = state_dir / "flux"
    kubeconfig_path = write_kubeconfig(directory / f"{name}.kubeconfig", dict(kubeconfig))
    argv = [
        str(binary),
        *flags,
        "--enable-leader-election=false",
        "--watch-all-namespaces=true",
        "--log-level=info",
    ]
    env = {
        "KUBECONFIG": str(kubeconfig_path),
        "RUNTIME_NAMESPACE": NAMESPACE,
        "HOME": str(directory),
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(_tmp(directory)),
    }
    return spawn(name, argv, state_dir / "logs" / f"{name}.log", env=env, cwd=directory)


def _tmp(directory: Path) -> Path:
    """A scratch directory of the controllers' own (kustomize-controller unpacks there)."""
    path = directory / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _existing_is_fine() -> Iterator[None]:
    """Ignore a 409 AlreadyExists: the objects are created once and then reused."""
    try:
        yield
    except client.ApiException as error:
        if error.status != 409:
            raise
