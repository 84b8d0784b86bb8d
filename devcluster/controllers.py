"""Run the real ``kube-controller-manager``, ``kube-scheduler`` and kwok on the local cluster.

Why: without them nobody turns a Deployment into a ReplicaSet and pods, nobody writes its
status, and nobody collects garbage, so anything that depends on the deployment controller's
behaviour (``observedGeneration`` lag, surge, progress conditions, ReplicaSets) or on
ownerReferences would only ever meet an imitation. With them, only the traffic and its
Istio metrics are simulated (:mod:`devcluster.dataplane_sim`).

* ``kube-controller-manager`` runs the controllers a workload's life needs
  (:data:`CONTROLLERS`): deployments, ReplicaSets, the garbage collector, namespaces (a
  deleted namespace is emptied and goes), ServiceAccounts (every namespace gets ``default``,
  which pods need), the pod garbage collector and the node lifecycle controller (it lifts the
  ``not-ready`` taint the API server puts on a new node once kwok reports it Ready). The HPA
  controller is left out: there is no metrics API for it to read.
* ``kube-scheduler`` places pods on the nodes.
* kwok (``sigs.k8s.io/kwok``, the Kubernetes project's simulator of nodes for scale tests)
  plays the kubelet of :data:`NODE_COUNT` fake nodes: it keeps them Ready and moves their
  pods through their phases. Its *stages* are kwok's own "fast" stages, read from the pinned
  module, with one change: a pod waits for the ``sim.autopilot.dev/ready-delay`` of its
  template before it is Ready (``never``: it stays Pending), as the simulator's kubelet did.

All three run as the cluster admin over the admin kubeconfig, without leader election, with
their health endpoints on free loopback ports (``/healthz`` needs no credentials; nothing
else is served to anyone, as no authentication or authorization kubeconfig is given).
"""

from __future__ import annotations

import copy
import ssl
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster import crds
from devcluster.build import KWOK
from devcluster.pki import Pki
from devcluster.process import ManagedProcess, http_ok, spawn

#: Part names, as ``autopilot dev status`` lists them.
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK_PART = "kwok"

#: Seconds to wait for each one's ``/healthz``.
STARTUP_TIMEOUT = 120.0

#: The controllers ``kube-controller-manager`` runs (``--controllers``).
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
)

#: Requests per second (and burst) each control-plane client may make. The defaults (20/30
#: for the controller manager) throttle a cluster running hundreds of rollouts at once.
API_QPS = 200
API_BURST = 400

#: Fake nodes kwok manages, and what each one offers (enough for thousands of small pods).
NODE_COUNT = 3
NODE_PREFIX = "kwok-node-"
NODE_CAPACITY = {"cpu": "1000", "memory": "4Ti", "pods": "5000"}

#: The annotation that marks a node as kwok's (``--manage-nodes-with-annotation-selector``).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"

#: The pod template annotation whose value delays a pod's readiness (the simulator's).
READY_DELAY_ANNOTATION = "sim.autopilot.dev/ready-delay"

#: kwok's stages, by path inside its module: nodes become Ready and keep a heartbeat; pods
#: become Ready, complete, and go when deleted.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

#: jq: the ready delay as a Go duration ("2.5" and "2.5s" both mean 2.5 s).
_READY_DELAY_JQ = (
    f'(.metadata.annotations["{READY_DELAY_ANNOTATION}"] // "") '
    '| if test("^[0-9]+(\\\\.[0-9]+)?$") then . + "s" else . end'
)


def healthy(port: int) -> bool:
    """Whether a control-plane component's ``/healthz`` on ``port`` (HTTPS) answers 200.

    Their serving certificates are self-signed (generated at start), so none is verified.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http_ok(f"https://127.0.0.1:{port}/healthz", context=context)


def kwok_healthy(port: int) -> bool:
    """Whether kwok's ``/healthz`` on ``port`` (plain HTTP) answers 200."""
    return http_ok(f"http://127.0.0.1:{port}/healthz")


def start_controller_manager(
    binary: Path, state_dir: Path, kubeconfig: Path, pki: Pki, *, port: int
) -> ManagedProcess:
    """Start ``kube-controller-manager`` (without waiting for it)."""
    cert_dir = state_dir / "controller-manager"
    cert_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--leader-elect=false",
        f"--controllers={','.join(CONTROLLERS)}",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--use-service-account-credentials=false",
        f"--kube-api-qps={API_QPS}",
        f"--kube-api-burst={API_BURST}",
        "--v=1",
    ]
    return spawn(CONTROLLER_MANAGER, argv, state_dir / "logs" / "kube-controller-manager.log")


def start_scheduler(
    binary: Path, state_dir: Path, kubeconfig: Path, *, port: int
) -> ManagedProcess:
    """Start ``kube-scheduler`` (without waiting for it)."""
    cert_dir = state_dir / "scheduler"
    cert_dir.mkdir(parents=True, exist_ok=True)
    config = cert_dir / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "leaderElection": {"leaderElect": False},
                "clientConnection": {
                    "kubeconfig": str(kubeconfig),
                    "qps": API_QPS,
                    "burst": API_BURST,
                },
            }
        )
    )
    argv = [
        str(binary),
        f"--config={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--v=1",
    ]
    return spawn(SCHEDULER, argv, state_dir / "logs" / "kube-scheduler.log")


def kwok_stages(module: Path) -> list[dict[str, Any]]:
    """kwok's own stages from its module directory, with the ready delay added to pod-ready.

    Raises:
        crds.CrdError: A stage file is missing from the module.
    """
    stages: list[dict[str, Any]] = []
    for relative in KWOK_STAGE_FILES:
        path = module / relative
        if not path.is_file():
            raise crds.CrdError(f"{KWOK.what} has no {relative}")
        stages += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [with_ready_delay(stage) for stage in stages]


def with_ready_delay(stage: dict[str, Any]) -> dict[str, Any]:
    """Return ``stage``, and if it is kwok's ``pod-ready``, one that honours the ready delay.

    A pod whose template says ``never`` is not selected (it stays Pending, never Ready); any
    other value delays the stage by that duration.
    """
    if (stage.get("metadata") or {}).get("name") != "pod-ready":
        return stage
    changed = copy.deepcopy(stage)
    spec = changed.setdefault("spec", {})
    expressions = spec.setdefault("selector", {}).setdefault("matchExpressions", [])
    expressions.append(
        {
            "key": f'.metadata.annotations["{READY_DELAY_ANNOTATION}"]',
            "operator": "NotIn",
            "values": ["never"],
        }
    )
    delay = spec.setdefault("delay", {})
    delay.setdefault("durationMilliseconds", 0)
    delay["durationFrom"] = {"expressionFrom": _READY_DELAY_JQ}
    return changed


def write_kwok_config(state_dir: Path) -> Path:
    """Write kwok's configuration (its stages) into the state directory; return its path.

    Raises:
        crds.CrdError: Go is missing or kwok's module could not be downloaded.
    """
    module = crds.module_dir(f"{KWOK.module}@{KWOK.version}")
    path = state_dir / "kwok" / "kwok.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(kwok_stages(module), sort_keys=False))
    return path


def start_kwok(
    binary: Path, state_dir: Path, kubeconfig: Path, config: Path, *, port: int
) -> ManagedProcess:
    """Start kwok managing the nodes annotated as its own (without waiting for it)."""
    argv = [
        str(binary),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_VALUE}",
        f"--server-address=127.0.0.1:{port}",
        "--cidr=10.244.0.0/16",
        "--node-ip=127.0.0.1",
    ]
    return spawn(KWOK_PART, argv, state_dir / "logs" / "kwok.log")


def node(name: str) -> dict[str, Any]:
    """A fake node for kwok: its annotation, labels and capacity (kwok writes its status)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY},
    }


def ensure_nodes(api: client.ApiClient, count: int = NODE_COUNT) -> list[str]:
    """Create the fake nodes that are missing; return every fake node's name."""
    core = client.CoreV1Api(api)
    names = [f"{NODE_PREFIX}{index}" for index in range(count)]
    existing = {item.metadata.name for item in core.list_node().items if item.metadata}
    for name in names:
        if name in existing:
            continue
        try:
            body: Any = node(name)  # a plain mapping: the client sends it as JSON
            core.create_node(body)
        except client.ApiException as error:
            if error.status != 409:  # created meanwhile by another ``up``
                raise
    return names
