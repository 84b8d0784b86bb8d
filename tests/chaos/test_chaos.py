"""The chaos harness's short CI variant: three rollouts (healthy, faulty, gated) while every
component is SIGKILLed and restarted. The long run is ``python -m bench.chaos``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.cluster import DevCluster
from devcluster.state import Ports
from tests.chaos.harness import COMPONENTS, WORKER, Chaos

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A local cluster of the test's own: its parts are killed, the session's are not."""
    cluster = DevCluster(tmp_path / "cluster", Ports.all_free())
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


async def test_every_rollout_ends_as_its_health_says_while_every_component_is_killed(
    own_cluster: DevCluster, tmp_path: Path
) -> None:
    kills = {component: 1 for component in COMPONENTS} | {WORKER: 2}
    chaos = Chaos(
        own_cluster,
        rollouts=3,
        kills=kills,
        spacing_s=(2.0, 4.0),
        seed=15,
        timeout_s=300,
        log_dir=tmp_path,
    )
    report = await chaos.run()
    print("\n".join(report.lines()))
    assert len(report.kills) == sum(kills.values()), "every planned kill happened"
    assert report.wrong == []
    assert report.problems == []
    # Every run's history was replayed. What does not replay is printed above and fails the
    # long run (bench/chaos.py), not this one: an approval that reaches a just-restarted
    # worker with a timer's firing can record its acceptance in an order no replay
    # reproduces, an open defect (docs/reliability.md) this variant meets now and then.
    assert report.histories_replayed >= len(chaos.rollouts)
    assert report.approvals == {"app2": 1}, "the gated rollout's approval is honoured once"
    assert report.hook_effects == 3, "each pre-rollout side effect applied once"
