"""Least privilege, measured: the operators' role grants what they use and no more.

The real worker and watchers run as the ``autopilot`` ServiceAccount, authenticated by a
bound token, through a healthy rollout, a rollback and a quarantine
(:mod:`tests.security.scenario`), once bound to the ClusterRole of
``deploy/kubernetes/rbac.yaml`` and once to the Role of ``deploy/kubernetes/namespaced/``
in the watched namespace only. The API server's audit log says which (verb, group,
resource, subresource) they asked for; the role must grant exactly that set, plus the
permissions its ``autopilot.dev/unexercised`` annotation lists with a reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deploy.rbac_audit import (
    Comparison,
    Usage,
    compare,
    granted_permissions,
    unexercised,
    used_permissions,
)
from devcluster.apiserver import audit_log_path
from devcluster.cluster import DevCluster
from devcluster.crds import install_autopilot_crds
from service.temporal import connect
from tests.fixtures.cluster import fresh_namespace
from tests.security.install import NAMESPACED_RBAC, RBAC, operators_identity, operators_role
from tests.security.scenario import run_scenario

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: The trimmed audit sample the unit tests read (one event per permission used).
SAMPLE = Path(__file__).with_name("audit_sample.jsonl")


def trimmed(lines: list[str], username: str) -> list[str]:
    """One audit event per permission ``username`` used."""
    kept: dict[tuple[str, str, str, str], str] = {}
    for line in lines:
        event = json.loads(line)
        ref = event.get("objectRef")
        if event.get("user", {}).get("username") != username or ref is None:
            continue
        key = (event["verb"], ref.get("apiGroup", ""), ref["resource"], ref.get("subresource", ""))
        kept.setdefault(key, line)
    return [kept[key] for key in sorted(kept)]


@dataclass(frozen=True)
class Run:
    """What the operators asked for, and whether the scenario ended as it should."""

    usage: Usage
    failure: str | None


class Measure:
    """Runs the scenario as the operators bound to a role, and reads what they used."""

    def __init__(
        self,
        dev_cluster: DevCluster,
        kube_api: client.ApiClient,
        temporal_address: str,
        prometheus_url: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        self.audit_log = audit_log_path(dev_cluster.state_dir)
        self.kube_api = kube_api
        self.temporal_address = temporal_address
        self.prometheus_url = prometheus_url
        self.tmp_path_factory = tmp_path_factory

    async def __call__(self, role: dict[str, Any], *, record: bool = False) -> Run:
        if not self.audit_log.exists():
            pytest.skip("this cluster's API server keeps no audit log (started before it did)")
        install_autopilot_crds(self.kube_api)
        temporal = await connect(self.temporal_address)
        with (
            fresh_namespace(self.kube_api) as system,
            fresh_namespace(self.kube_api) as watched,
            operators_identity(self.kube_api, system, role, bound_in=[watched]) as identity,
        ):
            started, failure = time.monotonic(), None
            try:
                await run_scenario(
                    admin=self.kube_api,
                    identity=identity,
                    temporal=temporal,
                    temporal_address=self.temporal_address,
                    prometheus_url=self.prometheus_url,
                    namespace=watched,
                    workdir=self.tmp_path_factory.mktemp("least-privilege"),
                )
            except AssertionError as error:  # measured all the same: a refusal says why
                failure = str(error)
            seconds = time.monotonic() - started
            lines = self.audit_log.read_text().splitlines()
            usage = used_permissions(lines, identity.username)
            print(f"\n{role['kind']}: the scenario ran in {seconds:.0f} s and used:")
            for permission in sorted(usage.used, key=str):
                print(f"  {permission}  x{usage.permissions[permission]}")
            if record:
                sample = "\n".join(trimmed(lines, identity.username))
                SAMPLE.write_text(
                    sample.replace(system, "autopilot-system").replace(watched, "shop") + "\n"
                )
        return Run(usage, failure)


def against(run: Run, manifest: Path) -> Comparison:
    """What ``run`` used against what the operators' role in ``manifest`` grants."""
    role = operators_role(manifest)
    return compare(run.usage.used, granted_permissions(role), unexercised(role))


@pytest.fixture(scope="module")
def measure(
    dev_cluster: DevCluster,
    kube_api: client.ApiClient,
    temporal_address: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Measure:
    return Measure(dev_cluster, kube_api, temporal_address, prometheus_url, tmp_path_factory)


@pytest.fixture(scope="module")
async def cluster_wide(measure: Measure) -> AsyncIterator[Run]:
    """What the operators bound to the ClusterRole asked of the API server."""
    record = bool(os.environ.get("AUTOPILOT_RECORD_AUDIT_SAMPLE"))
    yield await measure(operators_role(RBAC), record=record)


@pytest.fixture(scope="module")
async def namespaced(measure: Measure) -> AsyncIterator[Run]:
    """What the operators bound to the Role in the watched namespace only asked for."""
    yield await measure(operators_role(NAMESPACED_RBAC))


def test_the_operators_bound_to_the_cluster_role_were_never_refused(cluster_wide: Run) -> None:
    assert not cluster_wide.usage.denied, sorted(map(str, cluster_wide.usage.denied))


def test_bound_to_the_cluster_role_the_operators_promote_roll_back_and_quarantine(
    cluster_wide: Run,
) -> None:
    assert cluster_wide.failure is None, cluster_wide.failure


def test_the_cluster_role_grants_what_the_operators_used_and_nothing_beyond(
    cluster_wide: Run,
) -> None:
    comparison = against(cluster_wide, RBAC)

    assert comparison.exact, "\n" + comparison.explain()


def test_with_only_a_role_in_the_watched_namespace_the_operators_are_never_refused(
    namespaced: Run,
) -> None:
    assert namespaced.usage.used, "the scenario asked nothing of the API server"
    assert not namespaced.usage.denied, sorted(map(str, namespaced.usage.denied))


def test_with_only_a_role_in_the_watched_namespace_they_promote_roll_back_and_quarantine(
    namespaced: Run,
) -> None:
    assert namespaced.failure is None, namespaced.failure


def test_the_namespaced_role_grants_what_the_operators_used_and_nothing_beyond(
    namespaced: Run,
) -> None:
    comparison = against(namespaced, NAMESPACED_RBAC)

    assert comparison.exact, "\n" + comparison.explain()
