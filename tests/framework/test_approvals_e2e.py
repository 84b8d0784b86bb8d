"""Approvals through the API server: RBAC decides who may command, and the name is real.

The real worker process runs the ticket operator with its watchers (the approvals watcher
among them) on the local cluster. People are ServiceAccounts with bound tokens, so the API
server authenticates them as it would anyone; ``autopilot approve`` runs as each of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client, WorkflowHandle

from devcluster.kubeconfig import ServiceAccountIdentity, service_account_identity
from models.approvals import APPROVAL_GROUP, APPROVAL_PLURAL, APPROVAL_VERSION
from models.operator import OperatorInput, OperatorStatus, Target
from service.temporal import connect
from tests.engine.helpers import send, wait_for
from tests.fixtures.cluster import fresh_namespace
from tests.framework.processes import WorkerProcess, cli, worker_fixture
from tests.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.temporal]

MODULES = "tests.engine.ticket_operator"
worker = worker_fixture(MODULES)


@pytest.fixture
async def temporal_client(temporal_address: str) -> Client:
    """A client of the cluster's Temporal, with the pydantic converter the worker uses."""
    return await connect(temporal_address)


async def ticket_in_review(
    temporal: Client,
    worker: WorkerProcess,
    namespace: str,
    approvers: dict[str, Any] | None = None,
) -> Any:
    """A ticket in ``namespace`` waiting for its approval (under ``approvers``, if given)."""
    target = Target(namespace=namespace, name=f"t-{uuid.uuid4().hex[:6]}")
    spec: dict[str, Any] = {"required_votes": 1}
    if approvers is not None:
        spec["approvers"] = approvers
    handle: WorkflowHandle[Any, OperatorStatus] = await temporal.start_workflow(
        "ticket",
        OperatorInput(target=target, spec=spec),
        id=target.workflow_id("ticket"),
        task_queue=worker.queue,
        result_type=OperatorStatus,
    )
    await send(handle, "Vote", "v1", voter="ann")
    await wait_for(handle, "InReview", attempts=1200)
    return handle


def may_approve(kube_api: client.ApiClient, namespace: str, person: ServiceAccountIdentity) -> None:
    """Bind the ``autopilot-approver`` role to ``person`` in ``namespace``, as an admin would."""
    binding: Any = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"approver-{person.name}"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "autopilot-approver",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": person.name, "namespace": person.namespace}
        ],
    }
    client.RbacAuthorizationV1Api(kube_api).create_namespaced_role_binding(namespace, binding)


@pytest.fixture
def approver_role(kube_api: client.ApiClient) -> None:
    """The ``autopilot-approver`` ClusterRole of ``deploy/kubernetes/rbac.yaml``."""
    import yaml

    rbac = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "rbac.yaml"
    [role] = [
        doc
        for doc in yaml.safe_load_all(rbac.read_text())
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "autopilot-approver"
    ]
    rbac_api = client.RbacAuthorizationV1Api(kube_api)
    try:
        rbac_api.create_cluster_role(role)
    except client.ApiException as error:
        if error.status != 409:
            raise


@pytest.fixture
async def ticket(temporal_client: Client, worker: WorkerProcess, namespace: str) -> Any:
    """A ticket of the test's namespace, waiting for its approval."""
    return await ticket_in_review(temporal_client, worker, namespace)


@pytest.fixture
def bob(
    kube_api: client.ApiClient,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
    approver_role: None,
) -> ServiceAccountIdentity:
    """Someone the namespace's RoleBinding lets approve."""
    person = service_account("bob")
    may_approve(kube_api, namespace, person)
    return person


def target_of(ticket: Any) -> str:
    """``namespace/name``, as a person types it."""
    _, namespace, name = ticket.id.split("/")
    return f"{namespace}/{name}"


def approve_as(
    person: ServiceAccountIdentity, tmp_path: Path, temporal_address: str, *args: str
) -> Any:
    kubeconfig = person.write(tmp_path / f"{person.name}.kubeconfig")
    return cli(kubeconfig, temporal_address, MODULES, "ticket", "approve", *args, "-o", "json")


async def test_an_approval_by_someone_rbac_allows_is_recorded_with_the_name_the_api_server_saw(
    worker: WorkerProcess,
    temporal_client: Client,
    kube_api: client.ApiClient,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
    approver_role: None,
    tmp_path: Path,
    temporal_address: str,
) -> None:
    handle = await ticket_in_review(temporal_client, worker, namespace)
    bob = service_account("bob")
    may_approve(kube_api, namespace, bob)

    approved = approve_as(
        bob, tmp_path, temporal_address, f"{namespace}/{handle.id.split('/')[-1]}"
    )

    assert approved.returncode == 0, approved.stdout + approved.stderr + worker.output()
    assert json.loads(approved.stdout)["by"] == bob.username
    final = await handle.result()
    [record] = final.commands
    assert (record.command, record.by, record.via) == ("approve", bob.username, "kubernetes")
    listed: Any = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL
    )
    [approval] = listed["items"]
    assert approval["status"]["phase"] == "Applied"
    assert approval["spec"]["requestedBy"] == bob.username


async def test_someone_without_the_role_is_refused_by_the_api_server_and_nothing_changes(
    worker: WorkerProcess,
    temporal_client: Client,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
    approver_role: None,
    tmp_path: Path,
    temporal_address: str,
) -> None:
    handle = await ticket_in_review(temporal_client, worker, namespace)
    mallory = service_account("mallory")

    refused = approve_as(
        mallory, tmp_path, temporal_address, f"{namespace}/{handle.id.split('/')[-1]}"
    )

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused by the API server" in refused.stderr
    status = await handle.query("status", result_type=OperatorStatus)
    assert (status.state, status.commands) == ("InReview", [])


async def test_a_requester_written_by_the_client_is_replaced_by_the_authenticated_one(
    ticket: Any, bob: ServiceAccountIdentity, kube_api: client.ApiClient, namespace: str
) -> None:
    handle = ticket
    forged: Any = {
        "apiVersion": f"{APPROVAL_GROUP}/{APPROVAL_VERSION}",
        "kind": "Approval",
        "metadata": {"name": "forged"},
        "spec": {
            "operator": "ticket",
            "target": handle.id.split("/")[-1],
            "command": "approve",
            "requestedBy": "the-cto",
            "requestedGroups": ["system:masters"],
        },
    }
    custom = client.CustomObjectsApi(bob.api_client())
    created: Any = custom.create_namespaced_custom_object(
        APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, forged
    )

    assert created["spec"]["requestedBy"] == bob.username
    assert "system:masters" not in created["spec"]["requestedGroups"]
    final = await handle.result()
    assert [c.by for c in final.commands] == [bob.username]
    with pytest.raises(client.ApiException) as changed:  # not even by an admin
        client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            APPROVAL_GROUP,
            APPROVAL_VERSION,
            namespace,
            APPROVAL_PLURAL,
            "forged",
            {"spec": {"command": "abort"}},
        )
    assert "cannot change once created" in str(changed.value.body)


async def test_as_cannot_be_combined_with_the_kubernetes_path_and_the_direct_path_is_labelled(
    ticket: Any, bob: ServiceAccountIdentity, tmp_path: Path, temporal_address: str
) -> None:
    handle, name = ticket, target_of(ticket)

    mixed = approve_as(
        bob, tmp_path, temporal_address, name, "--as", "carol", "--via", "kubernetes"
    )
    direct = approve_as(bob, tmp_path, temporal_address, name, "--as", "carol")

    assert mixed.returncode == 2, mixed.stderr
    assert "--as cannot be used with --via kubernetes" in mixed.stderr
    assert direct.returncode == 0, direct.stderr
    final = await handle.result()
    assert [(c.by, c.via) for c in final.commands] == [("carol", "temporal")]


async def test_an_approval_the_state_does_not_take_is_refused_in_its_status(
    ticket: Any,
    bob: ServiceAccountIdentity,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    temporal_address: str,
) -> None:
    kubeconfig = bob.write(tmp_path / "bob.kubeconfig")
    name = target_of(ticket)

    retried = cli(kubeconfig, temporal_address, MODULES, "ticket", "retry", name)

    assert retried.returncode == 1, retried.stdout + retried.stderr
    assert "retry refused: 'retry' is not accepted in state InReview" in retried.stderr

    async def phase() -> str | None:
        listed: Any = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
            APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL
        )
        [approval] = listed["items"]
        return (approval.get("status") or {}).get("phase")

    assert await eventually(phase, lambda p: p == "Refused")


async def test_approver_rules_let_only_the_group_they_name_approve_and_refuse_direct_names(
    worker: WorkerProcess,
    temporal_client: Client,
    kube_api: client.ApiClient,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
    approver_role: None,
    tmp_path: Path,
    temporal_address: str,
) -> None:
    # The rule names a group: the ServiceAccounts of the test's namespace. Mallory holds the
    # same role there, but lives in another namespace, so she is not in that group.
    group = f"system:serviceaccounts:{namespace}"
    handle = await ticket_in_review(
        temporal_client,
        worker,
        namespace,
        approvers={"rules": [{"groups": [group], "commands": ["approve"]}]},
    )
    name = target_of(handle)
    bob = service_account("bob")
    may_approve(kube_api, namespace, bob)
    with fresh_namespace(kube_api) as elsewhere:
        mallory = service_account_identity(kube_api, elsewhere, "mallory")
        may_approve(kube_api, namespace, mallory)

        refused = approve_as(mallory, tmp_path, temporal_address, name)
        direct = approve_as(bob, tmp_path, temporal_address, name, "--as", "bob")
        approved = approve_as(bob, tmp_path, temporal_address, name)

    assert refused.returncode == 1, refused.stdout + refused.stderr + worker.output()
    assert (
        f"{mallory.username} may not give 'approve' on {name}: its approver rules allow only "
        f"groups {group}" in refused.stderr
    )
    assert direct.returncode == 1, direct.stdout + direct.stderr
    assert "unchecked name ('bob'): use an Approval" in direct.stderr
    assert approved.returncode == 0, approved.stdout + approved.stderr + worker.output()
    final = await handle.result()
    assert [(c.command, c.by, c.via) for c in final.commands] == [
        ("approve", bob.username, "kubernetes")
    ]
    listed: Any = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL
    )
    outcomes = {
        item["spec"]["requestedBy"]: (item["status"]["phase"], item["status"].get("message", ""))
        for item in listed["items"]
    }
    assert outcomes[bob.username][0] == "Applied"
    assert outcomes[mallory.username][0] == "Refused"
    assert "its approver rules allow only" in outcomes[mallory.username][1]
