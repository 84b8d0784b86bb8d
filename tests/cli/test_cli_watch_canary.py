"""`autopilot watch` on a real canary tells each failed hook, analysis and weight as it happens.

The canary runs for real: a worker in this process, the cluster's Temporal, kube-apiserver
and Prometheus; pods and Envoy traffic come from the data-plane simulator. ``watch`` writes
to a pipe with no ``COLUMNS``, as in a CI log.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.canary.cluster import new_revision
from tests.canary.conftest import canary_env, rollouts  # noqa: F401 - fixtures used here
from tests.canary.hooks import hook_receiver
from tests.canary.specs import spec_dict
from tests.canary.test_canary_e2e import V2, deployed
from tests.cli.test_cli_canary import SUCCESS_RATE, cluster_cli  # noqa: F401 - a fixture
from tests.cli.test_cli_status import PIPE

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]


async def test_watch_tells_each_failed_pre_rollout_hook_with_its_count_as_it_happens(
    autopilot,
    cluster_cli,  # noqa: F811
    rollouts,  # noqa: F811
    kube_api,
    namespace,
):
    async with hook_receiver() as receiver:
        receiver.status["/smoke"] = 500
        smoke = {"name": "smoke", "type": "pre-rollout", "url": receiver.url("smoke")}
        spec = spec_dict(
            "podinfo", interval="3s", threshold=3, metrics=[SUCCESS_RATE], webhooks=[smoke]
        )
        await deployed(rollouts, kube_api, namespace, spec)
        new_revision(kube_api, namespace, "podinfo", V2)
        handle = await rollouts.start(namespace, "podinfo", spec)
        watched = await autopilot(
            "watch", handle.id, "--interval", "0.2", env={**cluster_cli, **PIPE}
        )

    assert watched.exit_code == 1, watched.output
    lines = watched.stdout.splitlines()
    failures = [line for line in lines if f"{handle.id}:   pre-rollout hooks failed (" in line]
    assert [re.findall(r"\((\d)/3\)", line) for line in failures] == [["1"], ["2"], ["3"]]
    assert all(line.endswith("smoke: HTTP 500: said 500") for line in failures)
    rollback = lines.index(
        next(line for line in lines if line.endswith("Starting → RollingBack on Started"))
    )
    assert lines.index(failures[1]) < rollback < lines.index(failures[2])
    assert "stopped in state Failed: failed" in watched.stdout


async def test_watch_tells_every_analysis_against_its_thresholds_and_each_weight(
    autopilot,
    cluster_cli,  # noqa: F811
    rollouts,  # noqa: F811
    kube_api,
    namespace,
):
    spec = spec_dict("podinfo", interval="2s", threshold=2, maxWeight=30, metrics=[SUCCESS_RATE])
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)
    # As JSON: each record's text is the sentence a plain line ends with.
    watched = await autopilot(
        "watch", handle.id, "--interval", "0.2", "-o", "json", env={**cluster_cli, **PIPE}
    )

    assert watched.exit_code == 0, watched.output
    records = [json.loads(line) for line in watched.stdout.splitlines()]
    analyses = [r for r in records if r["kind"] == "analysis" and r["outcome"] == "passed"]
    assert analyses, records
    # (A loaded machine may fit two analyses in one look: the text then says so at its end.)
    passed = (
        r"^analysis \d+ passed: request-success-rate [\d.]+ \(pass; min 99\); failed checks 0/2"
    )
    assert all(re.search(passed, r["text"]) for r in analyses), analyses
    metric = analyses[-1]["metrics"][0]
    assert metric["name"] == "request-success-rate" and metric["status"] == "pass"
    assert metric["min"] == 99 and isinstance(metric["value"], float)
    assert analyses[-1]["failed_checks"] == 0 and analyses[-1]["threshold"] == 2
    # The last step of the plan, then back to the primary (earlier steps may be over before
    # the first look).
    moved = [(r["from"], r["to"]) for r in records if r["kind"] == "weight"]
    assert [to for _, to in moved][-2:] == [30, 0], moved
    assert any(r["text"] == "routing 70/30 (primary/canary)" for r in records)
    assert records[-1]["kind"] == "stopped" and records[-1]["outcome"] == "succeeded"
