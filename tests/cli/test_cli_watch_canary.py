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
from tests.cli.test_cli_status import PIPE, rest_of, watching

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
    isolated_state,
):
    spec = spec_dict("podinfo", interval="2s", threshold=2, maxWeight=30, metrics=[SUCCESS_RATE])
    await deployed(rollouts, kube_api, namespace, spec)
    new_revision(kube_api, namespace, "podinfo", V2)
    handle = await rollouts.start(namespace, "podinfo", spec)
    # Two watchers at once: JSON records in a process of its own, lines in this one.
    as_json = await watching({**isolated_state, **cluster_cli}, handle.id, "-o", "json")
    watched = await autopilot("watch", handle.id, "--interval", "0.2", env={**cluster_cli, **PIPE})
    code, records_text = await rest_of(as_json)

    assert watched.exit_code == 0, watched.output
    lines = watched.stdout.splitlines()
    passed = (
        r"analysis \d+ passed: request-success-rate [\d.]+ \(pass; min 99\); failed checks 0/2$"
    )
    assert any(re.search(passed, line) for line in lines), watched.stdout
    weights = [line.split(":   ", 1)[1] for line in lines if ":   weight " in line]
    # The last steps of the plan (the first may be over before this watcher's first look).
    assert weights[-2:] == ["weight 20% → 30%", "weight 30% → 0%"]
    assert any(line.endswith("routing 70/30 (primary/canary)") for line in lines)

    assert code == 0, records_text
    records = [json.loads(line) for line in records_text.splitlines()]
    analyses = [r for r in records if r["kind"] == "analysis"]
    assert analyses, records
    metric = analyses[-1]["metrics"][0]
    assert metric["name"] == "request-success-rate" and metric["status"] == "pass"
    assert metric["min"] == 99 and isinstance(metric["value"], float)
    assert analyses[-1]["failed_checks"] == 0 and analyses[-1]["threshold"] == 2
    moved = [(r["from"], r["to"]) for r in records if r["kind"] == "weight"]
    assert moved[-2:] == [(20, 30), (30, 0)]
    assert records[-1]["kind"] == "stopped" and records[-1]["outcome"] == "succeeded"
