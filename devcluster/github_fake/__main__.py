"""Command line of the FAKE GitHub: ``python -m devcluster.github_fake``.

Prints one JSON line (``api_url``, ``clone_url``) and serves until SIGTERM or SIGINT. The
token and the webhook secret are read from files, never from the command line, so they do
not show in ``ps``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from devcluster.git_http import wait_for_stop_signal
from devcluster.github_fake.server import FakeGitHub


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.github_fake",
        description="A FAKE GitHub (REST API for pull requests, smart-HTTP git, webhooks) "
        "backed by a real bare git repository, for the local cluster and the tests.",
    )
    parser.add_argument("--root", required=True, type=Path, help="directory of the bare repo")
    parser.add_argument("--repository", default="fleet/config", help="owner/name (fleet/config)")
    parser.add_argument("--branch", default="main", help="the default branch (main)")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--token-file", type=Path, required=True, help="file with the token")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhooks")
    parser.add_argument("--webhook-secret-file", type=Path, default=None, help="webhook key")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until a signal arrives, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    secret = args.webhook_secret_file.read_text().strip() if args.webhook_secret_file else None
    fake = FakeGitHub(
        args.root,
        repository=args.repository,
        token=args.token_file.read_text().strip(),
        default_branch=args.branch,
        port=args.port,
        webhook_url=args.webhook_url,
        webhook_secret=secret,
    ).start()
    print(json.dumps({"api_url": fake.api_url, "clone_url": fake.clone_url}), flush=True)
    try:
        wait_for_stop_signal()
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
