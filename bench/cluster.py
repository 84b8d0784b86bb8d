"""The cluster a benchmark runs against: the one the environment names, or a fresh one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: What the environment must name to use a cluster that is already up.
NEEDED = ("KUBECONFIG", "TEMPORAL_ADDRESS", "PROMETHEUS_URL")


@contextlib.contextmanager
def bench_cluster(prefix: str) -> Iterator[dict[str, str]]:
    """``KUBECONFIG``, ``TEMPORAL_ADDRESS`` and ``PROMETHEUS_URL`` of the cluster to use.

    When the environment names all three (``eval "$(autopilot dev env)"``), that cluster;
    otherwise a local cluster of its own on free ports, stopped at the end.
    """
    if all(os.environ.get(name) for name in NEEDED):
        yield {name: os.environ[name] for name in NEEDED}
        return
    from devcluster.cluster import DevCluster
    from devcluster.state import Ports

    cluster = DevCluster(Path(tempfile.mkdtemp(prefix=prefix)), Ports.all_free())
    cluster.up()
    try:
        yield cluster.env()
    finally:
        cluster.down()
