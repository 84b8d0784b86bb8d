"""Where the dev cluster keeps built binaries and runtime state.

Binaries are expensive (minutes to build) and shared by every checkout, so they live in the
user's cache directory, keyed by version. Runtime state (certificates, etcd data, logs, PIDs)
belongs to one cluster and lives in the state directory, which tests point at a temporary
directory so that they never touch a developer's cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

from devcluster.versions import ETCD_VERSION, KUBERNETES_VERSION

#: Environment variable that overrides the default state directory.
STATE_DIR_ENV = "AUTOPILOT_DEV_STATE"


def cache_root() -> Path:
    """Return Autopilot's cache directory (``${XDG_CACHE_HOME:-~/.cache}/autopilot``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autopilot"


def kubernetes_bin_dir() -> Path:
    """Return the directory that holds the ``kube-apiserver`` built for the pinned version."""
    return cache_root() / "bin" / f"k8s-{KUBERNETES_VERSION}"


def etcd_bin_dir() -> Path:
    """Return the directory that holds the ``etcd`` built for the pinned version."""
    return cache_root() / "bin" / f"etcd-{ETCD_VERSION}"


def default_state_dir() -> Path:
    """Return the state directory: ``$AUTOPILOT_DEV_STATE`` or the XDG state location."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "autopilot" / "dev"
