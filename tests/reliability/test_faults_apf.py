"""Real throttling: the API server's own API Priority and Fairness answers 429, and we wait.

A FlowSchema sends every request of one ServiceAccount to a priority level with no seats
that rejects instead of queueing. APF still lets one request run when none is running, so
the test keeps one running: a LIST of several megabytes whose reader reads nothing, so the
API server's write (and the seat) stays busy. Meanwhile kube-apiserver itself answers every
other request of that ServiceAccount 429 with its ``Retry-After``; the product's client
retries four times after each ``Retry-After`` and then leaves the call to Temporal as
``KubernetesThrottled``. Once the seat is free again, the same call succeeds.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from kubernetes import client, utils
from temporalio.exceptions import ApplicationError

from activities import kube
from activities.kube.calls import KUBERNETES_THROTTLED, to_thread
from devcluster.kubeconfig import write_kubeconfig
from service.http_retry import KUBE
from tests.fixtures.faults import RetryCounters, product_pointed_at
from tests.waiting import eventually

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.faults,
    pytest.mark.usefixtures("no_workflow_left_running"),
]


@contextlib.contextmanager
def no_seats_for(api: client.ApiClient, namespace: str, account: str) -> Iterator[None]:
    flowcontrol = client.FlowcontrolApiserverV1Api(api)
    name = f"faults-{namespace}"
    utils.create_from_dict(
        api,
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 0,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        },
    )
    utils.create_from_dict(
        api,
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "priorityLevelConfiguration": {"name": name},
                "matchingPrecedence": 500,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": account, "namespace": namespace},
                            }
                        ],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                            }
                        ],
                    }
                ],
            },
        },
    )
    try:
        yield
    finally:
        flowcontrol.delete_flow_schema(name)
        flowcontrol.delete_priority_level_configuration(name)


@contextlib.contextmanager
def a_seat_held(identity, namespace: str) -> Iterator[None]:
    """A LIST of the namespace's ConfigMaps as the ServiceAccount, never read: the API
    server's write blocks, and its request holds the priority level's one seat."""
    cluster = identity.kubeconfig["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").split(":")
    authority = base64.b64decode(cluster["certificate-authority-data"]).decode()
    context = ssl.create_default_context(cadata=authority)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    conn = context.wrap_socket(raw, server_hostname=host)
    request = (
        f"GET /api/v1/namespaces/{namespace}/configmaps HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {identity.token}\r\nAccept: application/json\r\n\r\n"
    )
    conn.sendall(request.encode())
    try:
        yield
    finally:
        conn.close()


async def read_config_map(namespace: str) -> client.V1ConfigMap:
    return await to_thread(kube.core().read_namespaced_config_map, "settings", namespace)


async def test_a_priority_level_without_seats_throttles_and_the_client_honours_retry_after(
    kube_api, namespace, service_account, prometheus_url, tmp_path
):
    identity = service_account("throttled")
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}
    utils.create_from_dict(
        kube_api, {**role, "metadata": {"name": "read"}, "rules": [rule]}, namespace=namespace
    )
    utils.create_from_dict(
        kube_api,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "ServiceAccount", "name": "throttled", "namespace": namespace}],
        },
        namespace=namespace,
    )
    core = client.CoreV1Api(kube_api)
    meta = client.V1ObjectMeta
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=meta(name="settings"), data={"a": "b"})
    )
    for index in range(8):  # 8 MB to list: more than the sockets between hold
        bulk = client.V1ConfigMap(metadata=meta(name=f"bulk-{index}"), data={"d": "x" * 10**6})
        core.create_namespaced_config_map(namespace, bulk)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", identity.kubeconfig)
    raw = identity.api_client()

    def throttled_now() -> bool:
        try:
            client.CoreV1Api(raw).read_namespaced_config_map("settings", namespace)
        except client.ApiException as error:
            return error.status == 429
        return False

    with product_pointed_at(kubeconfig, prometheus_url):
        # Allowed first: the role binding works.
        assert (await read_config_map(namespace)).data == {"a": "b"}
        with no_seats_for(kube_api, namespace, "throttled"), a_seat_held(identity, namespace):
            await eventually(throttled_now, attempts=50, what="the FlowSchema in force")
            counters = RetryCounters("kube")
            started = time.monotonic()
            with pytest.raises(ApplicationError) as raised:
                await read_config_map(namespace)
            took = time.monotonic() - started

        assert raised.value.type == KUBERNETES_THROTTLED
        delay = raised.value.next_retry_delay
        assert delay is not None and timedelta(0) < delay <= timedelta(seconds=10)
        print(f"APF: Retry-After {delay.total_seconds():g}s, given up after {took:.2f}s")
        assert counters.retries("429") == KUBE.retries
        assert counters.exhausted("429") == 1
        assert took >= KUBE.retries * delay.total_seconds()
        assert counters.waited_s("429") >= KUBE.retries * delay.total_seconds()

        async def read() -> client.V1ConfigMap | None:
            try:
                return await read_config_map(namespace)
            except ApplicationError:
                return None

        found = await eventually(read, lambda answer: answer is not None, attempts=50)
        assert found is not None and found.data == {"a": "b"}
