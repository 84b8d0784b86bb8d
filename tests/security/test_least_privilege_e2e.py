"""Least privilege, measured: the operators' ClusterRole grants what they use and no more.

The real worker and watchers run as the ``autopilot`` ServiceAccount of
``deploy/kubernetes/rbac.yaml``, authenticated by a bound token, through a healthy rollout,
a rollback and a quarantine (:mod:`tests.security.scenario`). The API server's audit log
says which (verb, group, resource, subresource) they asked for; the role must grant exactly
that set, plus the permissions its ``autopilot.dev/unexercised`` annotation lists with a reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes import client

from deploy.rbac_audit import Usage, compare, granted_permissions, unexercised, used_permissions
from devcluster.apiserver import audit_log_path
from devcluster.cluster import DevCluster
from devcluster.crds import install_autopilot_crds
from service.temporal import connect
from tests.fixtures.cluster import fresh_namespace
from tests.security.install import operators_identity, operators_role
from tests.security.scenario import run_scenario

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

#: The trimmed audit sample the unit tests read (one event per permission used).
SAMPLE = Path(__file__).with_name("audit_sample.jsonl")


def trimmed(lines: list[str], username: str) -> list[str]:
    """One audit event per permission ``username`` used, names of the run made generic."""
    kept: dict[tuple[str, str, str, str], str] = {}
    for line in lines:
        event = json.loads(line)
        ref = event.get("objectRef")
        if event.get("user", {}).get("username") != username or ref is None:
            continue
        key = (event["verb"], ref.get("apiGroup", ""), ref["resource"], ref.get("subresource", ""))
        kept.setdefault(key, line)
    return [kept[key] for key in sorted(kept)]


@pytest.fixture(scope="module")
async def measured(
    dev_cluster: DevCluster,
    kube_api: client.ApiClient,
    temporal_address: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Usage]:
    """What the operators asked of the API server during the scenario."""
    audit_log = audit_log_path(dev_cluster.state_dir)
    if not audit_log.exists():
        pytest.skip("this cluster's API server keeps no audit log (started before it did)")
    install_autopilot_crds(kube_api)
    temporal = await connect(temporal_address)
    with (
        fresh_namespace(kube_api) as system,
        fresh_namespace(kube_api) as watched,
        operators_identity(kube_api, system, operators_role()) as identity,
    ):
        seconds = await run_scenario(
            admin=kube_api,
            identity=identity,
            temporal=temporal,
            temporal_address=temporal_address,
            prometheus_url=prometheus_url,
            namespace=watched,
            workdir=tmp_path_factory.mktemp("least-privilege"),
        )
        lines = audit_log.read_text().splitlines()
        usage = used_permissions(lines, identity.username)
        print(f"\nscenario ran in {seconds:.0f} s; {len(usage.used)} permissions used:")
        for permission in sorted(usage.used, key=str):
            print(f"  {permission}  x{usage.permissions[permission]}")
        if os.environ.get("AUTOPILOT_RECORD_AUDIT_SAMPLE"):
            sample = "\n".join(trimmed(lines, identity.username))
            SAMPLE.write_text(
                sample.replace(identity.namespace, "autopilot-system").replace(watched, "shop")
                + "\n"
            )
        yield usage


def test_the_operators_were_never_refused_by_rbac(measured: Usage) -> None:
    assert not measured.denied, sorted(map(str, measured.denied))


def test_the_cluster_role_grants_what_the_operators_used_and_nothing_beyond(
    measured: Usage,
) -> None:
    role = operators_role()

    comparison = compare(measured.used, granted_permissions(role), unexercised(role))

    assert comparison.exact, "\n" + comparison.explain()
