"""Where GitHub's official OpenAPI descriptions are, and how they get there.

The fake GitHub is kept honest by tests that validate every response it gives against
GitHub's own REST description (npm ``@octokit/openapi``) and every webhook payload against
the webhooks description (npm ``@octokit/openapi-webhooks``). Both are installed with npm,
at the exact versions below, into Autopilot's cache directory (``scripts/setup`` runs
``python -m devcluster.github_fake.openapi``); nothing of them is committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from devcluster.paths import cache_root

#: The exact npm packages the contract tests read.
REST_PACKAGE = "@octokit/openapi"
REST_VERSION = "23.0.2"
WEBHOOKS_PACKAGE = "@octokit/openapi-webhooks"
WEBHOOKS_VERSION = "12.1.0"


def install_dir() -> Path:
    """The npm prefix the descriptions are installed under, keyed by both versions."""
    return cache_root() / "octokit" / f"openapi-{REST_VERSION}-webhooks-{WEBHOOKS_VERSION}"


def rest_description() -> Path:
    """GitHub's REST API description (api.github.com, OpenAPI 3.0)."""
    return install_dir() / "node_modules" / REST_PACKAGE / "generated" / "api.github.com.json"


def webhooks_description() -> Path:
    """GitHub's webhooks description (api.github.com, OpenAPI 3.1)."""
    return install_dir() / "node_modules" / WEBHOOKS_PACKAGE / "generated" / "api.github.com.json"


def installed() -> bool:
    """Whether both descriptions are on disk."""
    return rest_description().is_file() and webhooks_description().is_file()


def install() -> None:
    """Install both packages with npm (idempotent; seconds when already there).

    Raises:
        RuntimeError: npm is missing or the install failed; the message says which.
    """
    if installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is needed to install GitHub's OpenAPI descriptions for the contract tests "
            "(apt-get install npm)"
        )
    prefix = install_dir()
    prefix.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
            str(prefix),
            f"{REST_PACKAGE}@{REST_VERSION}",
            f"{WEBHOOKS_PACKAGE}@{WEBHOOKS_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0 or not installed():
        raise RuntimeError(
            f"npm install of GitHub's OpenAPI descriptions failed:\n{completed.stderr}"
        )


if __name__ == "__main__":
    try:
        install()
    except RuntimeError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from error
    print(f"GitHub OpenAPI descriptions: {install_dir()}")
