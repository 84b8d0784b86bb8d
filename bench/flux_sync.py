"""Push to applied: how long real Flux takes to bring a pushed commit into the cluster.

What is measured: from the moment ``git push`` returns (the commit is on the server) to the
moment the API server returns the ConfigMap with the pushed content. That covers
source-controller's next poll of the repository (``GitRepository.spec.interval``), its clone and
artifact, kustomize-controller noticing the new artifact, fetching it over HTTP, building and
server-side applying it.

How: Flux on the local cluster (``autopilot dev up --gitops``), a bare repository served by
``git http-backend`` in this process, a GitRepository and a Kustomization with the interval
given (default 1 s, as the tests use). Each round pushes a new value of one ConfigMap and
polls the API server every 50 ms until it shows it. Median, p90 and max over all rounds.
``--nudge`` also sets ``reconcile.fluxcd.io/requestedAt`` on the GitRepository right after each
push, as Flux's webhook ``Receiver`` does: with a long interval that is the latency a
repository with a push webhook sees.

Run::

    python -m bench.flux_sync --rounds 10                   # a temporary cluster of its own
    python -m bench.flux_sync --state-dir "$AUTOPILOT_DEV_STATE"  # a cluster already up --gitops
    python -m bench.flux_sync --interval 10m --nudge        # push webhook instead of polling
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kubernetes import client

from devcluster.cluster import DevCluster
from devcluster.git_http import GitHttpServer, init_bare_repository
from devcluster.state import Ports
from tests.fixtures.flux import BRANCH, ConfigRepo, FluxSync

#: How often the API server is asked whether the change arrived.
POLL_SECONDS = 0.05

#: A round that takes longer than this is reported as failed.
ROUND_TIMEOUT_SECONDS = 120.0


@contextlib.contextmanager
def flux_cluster(state_dir: Path | None) -> Iterator[DevCluster]:
    """The cluster named by ``state_dir`` (it must run with ``--gitops``), or a new one."""
    if state_dir is not None:
        cluster = DevCluster(state_dir)
        if not cluster.gitops:
            raise SystemExit(
                f"the cluster in {state_dir} does not run Flux: 'autopilot dev up --gitops'"
            )
        yield cluster
        return
    cluster = DevCluster(Path(tempfile.mkdtemp(prefix="bench-flux-")), Ports.all_free())
    cluster.up(gitops=True)
    try:
        yield cluster
    finally:
        cluster.down()


def measure(rounds: int, interval: str, state_dir: Path | None, *, nudge: bool) -> list[float]:
    """Push ``rounds`` changes and return each one's push-to-applied time in seconds."""
    times: list[float] = []
    with (
        flux_cluster(state_dir) as cluster,
        contextlib.closing(cluster.admin_api_client()) as api,
        tempfile.TemporaryDirectory(prefix="bench-flux-git-") as scratch,
        GitHttpServer(Path(scratch) / "repositories") as server,
    ):
        core = client.CoreV1Api(api)
        namespace = f"bench-flux-{secrets.token_hex(3)}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        init_bare_repository(server.root, "config.git", initial_branch=BRANCH)
        repo = ConfigRepo.create(server.repository_url("config.git"), Path(scratch) / "work")
        repo.write("README.md", "bench\n")
        repo.push("start")
        sync = FluxSync(
            api, namespace, "config", repo.url, target_namespace=namespace, interval=interval
        )
        sync.create()
        try:
            for number in range(rounds):
                value = f"round-{number}-{secrets.token_hex(2)}"
                repo.write("bench.yaml", _configmap(value))
                repo.push(f"round {number}")
                pushed = time.monotonic()
                if nudge:
                    sync.nudge()
                _wait_for(core, namespace, value)
                times.append(time.monotonic() - pushed)
                print(f"round {number + 1}/{rounds}: {times[-1]:.2f}s", flush=True)
        finally:
            sync.delete()
            core.delete_namespace(namespace)
    return times


def _configmap(value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bench"},
        "data": {"value": value},
    }


def _wait_for(core: client.CoreV1Api, namespace: str, value: str) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            found = core.read_namespaced_config_map("bench", namespace)
            if (found.data or {}).get("value") == value:
                return
        except client.ApiException as error:
            if error.status != 404:
                raise
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"Flux did not apply {value} within {ROUND_TIMEOUT_SECONDS:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="pushes to time (default 10)")
    parser.add_argument("--interval", default="1s", help="GitRepository interval (default 1s)")
    parser.add_argument("--state-dir", type=Path, help="a cluster already up with --gitops")
    parser.add_argument("--nudge", action="store_true", help="request a reconcile after a push")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 1000))
    times = measure(rounds, args.interval, args.state_dir, nudge=args.nudge)
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(
        f"push to applied over {len(times)} rounds (interval {args.interval}"
        f"{', nudged' if args.nudge else ''}): "
        f"median {statistics.median(times):.2f}s, p90 {p90:.2f}s, max {ordered[-1]:.2f}s"
    )


if __name__ == "__main__":
    main()
