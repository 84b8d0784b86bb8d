"""The dev cluster's Prometheus scrapes as often as chosen, and a running one takes a new
choice without a restart (runs with hundreds of services want fewer, larger scrapes)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from devcluster import prometheus
from devcluster.cluster import ClusterError, DevCluster
from devcluster.process import free_port
from devcluster.state import ClusterState
from tests.waiting import eventually


def scrape_intervals(url: str) -> set[str]:
    """The scrape interval of every active target, as Prometheus reports it."""
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=10) as response:
        return {t["scrapeInterval"] for t in json.load(response)["data"]["activeTargets"]}


def test_the_configuration_scrapes_and_times_out_at_the_chosen_interval() -> None:
    every_five = prometheus.scrape_config(9464, 9465, 5.0)["global"]
    half_second = prometheus.scrape_config(9464, 9465, 0.5)["global"]

    assert every_five == {
        "scrape_interval": "5s",
        "evaluation_interval": "5s",
        "scrape_timeout": "5s",
    }
    assert half_second["scrape_interval"] == "500ms"


def test_the_chosen_interval_is_remembered_and_an_older_state_file_means_every_second(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "cluster.json"
    ClusterState(scrape_interval=5.0).save(state_file)
    remembered = ClusterState.load(state_file).scrape_interval
    state_file.write_text(json.dumps({"ports": {}, "gitops": False}))

    assert remembered == 5.0
    assert ClusterState.load(state_file).scrape_interval == 1.0


def test_an_interval_out_of_bounds_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"between 0\.5 and 60 seconds, got 0\.1"):
        DevCluster(tmp_path / "dev").up(scrape_interval=0.1)

    assert not (tmp_path / "dev" / "cluster.json").exists()


@pytest.mark.cluster
async def test_a_running_prometheus_takes_a_new_interval_without_a_restart(
    tmp_path: Path,
) -> None:
    port, targets = free_port(), {"sim_port": free_port(), "autopilot_port": free_port()}
    process = prometheus.start_prometheus(
        prometheus.find_prometheus(install=False), tmp_path, port=port, **targets
    )
    try:
        prometheus.wait_prometheus(process, port)
        url = prometheus.url(port)
        await eventually(lambda: scrape_intervals(url), lambda seen: seen == {"1s"}, what="1s")

        unchanged = prometheus.write_config(tmp_path, **targets, interval=1.0)
        changed = prometheus.write_config(tmp_path, **targets, interval=5.0)
        prometheus.reload(process)

        assert (unchanged, changed) == (False, True)
        await eventually(lambda: scrape_intervals(url), lambda seen: seen == {"5s"}, what="5s")
        assert process.alive()
    finally:
        process.stop()
