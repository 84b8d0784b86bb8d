"""How long ``autopilot canary start -f`` takes to refuse an oversize canary manifest.

Issue 9's manifests are generated: 150,000 metrics (no output for over two minutes before
the bounds) and 15,000 metrics (Temporal's "Blob data size exceeds limit" after 28 s), plus
one just under the manifest limit (the slowest a refusal can be: it is parsed in full) and
a valid 50-metric one for scale. For each, two figures, the median of ``--rounds`` runs:

* **command**: the ``canary start`` command in this process (CliRunner), from argv to exit;
* **process**: ``python -m cli canary start ...`` as a user runs it, interpreter start and
  imports included; ``autopilot --help`` is timed the same way, for the start-up alone.

No Temporal or Kubernetes is needed: an oversize file is refused before either is asked.
The 50-metric manifest passes the check and then fails for want of a Temporal server (exit 5),
which is the point where a real start would begin to talk to the servers.

Run::

    python -m bench.spec_bounds --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from models.limits import MAX_MANIFEST_BYTES, format_size

ROOT = Path(__file__).resolve().parents[1]


def manifest(metrics: int) -> dict[str, Any]:
    """A Canary with ``metrics`` distinct, valid metrics."""
    return {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "shop"},
        "spec": {
            "targetRef": {"name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "stepWeight": 10,
                "metrics": [
                    {
                        "name": f"metric-{i}",
                        "thresholdRange": {"min": 99},
                        "query": f"up{{j='{i}'}}",
                    }
                    for i in range(metrics)
                ],
            },
        },
    }


def just_under_the_limit() -> dict[str, Any]:
    """A manifest of about :data:`MAX_MANIFEST_BYTES`: parsed in full, then refused."""
    count = 1
    while len(json.dumps(manifest(count * 2))) < MAX_MANIFEST_BYTES:
        count *= 2
    low, high = count, count * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (
            (middle, high)
            if len(json.dumps(manifest(middle))) <= MAX_MANIFEST_BYTES
            else (low, middle)
        )
    return manifest(low)


def timed_command(path: Path, env: dict[str, str]) -> tuple[float, int, str]:
    runner = CliRunner()
    started = time.perf_counter()
    result = runner.invoke(app, ["canary", "start", "podinfo", "-f", str(path)], env=env)
    return time.perf_counter() - started, result.exit_code, result.stderr


def timed_process(arguments: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli", *arguments],
        capture_output=True,
        env={**os.environ, **env},
        cwd=ROOT,
        check=False,
    )
    return time.perf_counter() - started, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cases = {
        "150,000 metrics": manifest(150_000),
        "15,000 metrics": manifest(15_000),
        "just under the limit": just_under_the_limit(),
        "50 metrics (valid)": manifest(50),
    }
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "AUTOPILOT_TEMPORAL_STATE_DIR": str(Path(scratch) / "state"),
            "AUTOPILOT_DEV_STATE": str(Path(scratch) / "dev"),
            "TEMPORAL_ADDRESS": "",
            "AUTOPILOT_TEMPORAL_ADDRESS": "",
            "KUBECONFIG": str(Path(scratch) / "none"),
        }
        print(f"{'manifest':<22} {'size':>9} {'exit':>4} {'command':>9} {'process':>9}  message")
        for name, document in cases.items():
            path = Path(scratch) / "canary.json"
            path.write_text(json.dumps(document))
            commands = [timed_command(path, env) for _ in range(args.rounds)]
            start = ["canary", "start", "podinfo", "-f", str(path)]
            processes = [timed_process(start, env) for _ in range(args.rounds)]
            _, code, stderr = commands[0]
            message = stderr.strip().splitlines()[-2 if "hint" in stderr else -1][:70]
            print(
                f"{name:<22} {format_size(path.stat().st_size):>9} {code:>4} "
                f"{statistics.median(c[0] for c in commands):>8.3f}s "
                f"{statistics.median(p[0] for p in processes):>8.3f}s  {message.strip()}"
            )
        baseline = [timed_process(["--help"], env) for _ in range(args.rounds)]
        print(f"{'(autopilot --help)':<22} {'':>9} {'':>4} {'':>9} ", end="")
        print(f"{statistics.median(b[0] for b in baseline):>8.3f}s  the CLI's own start-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
