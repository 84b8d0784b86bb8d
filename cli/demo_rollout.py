"""What ``autopilot demo`` does on the cluster: the sample app, its releases, its rollouts.

The app is the canary example's ``podinfo`` Deployment (``deploy/examples/podinfo.yaml``),
rolled out with ``demo/canary.yaml`` (Flagger's fields, intervals of seconds). A release is
what CI does to ship a version: change the image, and here, for the faulty one, add the
data-plane simulator's ``error-rate`` annotation to the pod template.

Each release is announced the way ``autopilot canary start`` and the Kubernetes watcher do
it: a signal-with-start of a ``NewRevision`` event to the durable workflow
``canary/<namespace>/podinfo``. A rollout is then followed from two real sources: the
machine's ``status`` query (state, decision, metric values) and the live VirtualService
(the weights Envoy would get). Nothing here draws; an :class:`Observer` is told what changed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from cli.errors import CliError
from cli.kube import new_revision_patch
from devcluster import temporal as dev_temporal
from models.canary import load_canary_spec
from models.operator import (
    EVENT_SIGNAL,
    STATUS_QUERY,
    EventEnvelope,
    OperatorInput,
    OperatorStatus,
    Target,
)
from models.revisions import pod_template_revision
from service.settings import DEFAULT_TASK_QUEUE
from service.temporal import connect

#: The repository root: the demo's manifests live beside the code (a clone, as scripts/demo).
ROOT = Path(__file__).resolve().parent.parent
#: The sample app (the user's Deployment, as users write it).
APP_MANIFEST = ROOT / "deploy" / "examples" / "podinfo.yaml"
#: The demo's canary: Flagger's fields with intervals of seconds.
CANARY_MANIFEST = ROOT / "demo" / "canary.yaml"
#: The app's Deployment name (the canary's targetRef).
APP = "podinfo"

#: Temporal namespace of the dev cluster's server.
TEMPORAL_NAMESPACE = dev_temporal.NAMESPACE
#: Who the demo's Temporal client says it is (in workflow history).
IDENTITY = "autopilot-demo"
#: The simulator annotation that makes a version answer errors (docs/dataplane-sim.md).
ERROR_RATE = "sim.autopilot.dev/error-rate"
#: Seconds between two looks at a rollout.
POLL_S = 0.5
#: The longest one rollout may take before the demo gives up on it.
ROLLOUT_DEADLINE_S = 300.0

#: What the demo creates in its namespace: its Deployment, and what the canary generates.
DEMO_OBJECTS = (
    ("deployments", APP),
    ("deployments", f"{APP}-primary"),
    ("services", APP),
    ("services", f"{APP}-primary"),
    ("services", f"{APP}-canary"),
    ("destinationrules", f"{APP}-primary"),
    ("destinationrules", f"{APP}-canary"),
    ("virtualservices", APP),
)


@dataclass(frozen=True)
class Release:
    """One version of the app the demo ships.

    Attributes:
        label: ``v1``, ``v2``, ``v3``.
        tag: podinfo's image tag.
        about: What is special about it, for people.
        expect: The outcome the demo expects (the workflow's ``data.outcome``).
        annotations: Pod-template annotations (the simulator's fault injection).
    """

    label: str
    tag: str
    about: str
    expect: str
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def image(self) -> str:
        """The container image."""
        return f"ghcr.io/stefanprodan/podinfo:{self.tag}"


V1 = Release("v1", "6.5.0", "the stable version", "initialized")
V2 = Release("v2", "6.5.1", "healthy", "promoted")
V3 = Release(
    "v3", "6.5.2", "half its requests fail (simulated)", "rolled back", {ERROR_RATE: "0.5"}
)
#: In order: v1 is deployed (the canary bootstraps its primary), then v2 and v3 roll out.
RELEASES = (V1, V2, V3)


@dataclass
class Outcome:
    """How one rollout ended.

    Attributes:
        release: What was rolled out.
        state: The machine's last state (``Succeeded``, ``Failed``, ...).
        outcome: ``data.outcome``: ``initialized``, ``promoted``, ``rolled back``, ...
        weights: Canary weights written to the VirtualService, in order.
        seconds: How long it took, from the announcement to the end.
        reason: Why it failed, when it did.
    """

    release: Release
    state: str
    outcome: str
    weights: list[int]
    seconds: float
    reason: str = ""

    @property
    def as_expected(self) -> bool:
        """Whether it ended the way the demo says it should."""
        return self.outcome == self.release.expect


#: ``(primary, canary)`` weights of the live VirtualService.
Weights = tuple[int, int]


class Observer(Protocol):
    """Told about a rollout at every look (the terminal view implements it)."""

    def update(self, status: OperatorStatus, weights: Weights | None, seconds: float) -> None:
        """The machine's status and the live weights, ``seconds`` after the announcement."""


# =============================================================================
# The app and its releases
# =============================================================================


def canary_spec(interval: float) -> dict[str, Any]:
    """The demo's canary spec with its interval, checked by the model the workflow uses.

    Raises:
        CanarySpecError: The manifest is invalid (the message names the field).
    """
    manifest = yaml.safe_load(CANARY_MANIFEST.read_text())
    manifest["spec"]["analysis"]["interval"] = f"{interval:g}s"
    load_canary_spec(manifest)
    spec: dict[str, Any] = manifest["spec"]
    return spec


def pick_namespace(api: k8s.ApiClient) -> str:
    """``demo``, else ``demo-2``, ...: the first namespace that is new, or active and unused.

    The dev cluster runs no controller manager, so a deleted namespace would stay
    Terminating forever: the demo empties its namespace instead, and the next run reuses it.
    """
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    for index in range(1, 100):
        name = "demo" if index == 1 else f"demo-{index}"
        try:
            existing = core.read_namespace(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise
            body: Any = {"metadata": {"name": name, "labels": {"autopilot.dev/demo": "true"}}}
            core.create_namespace(body)
            return name
        phase = existing.status.phase if existing.status else None
        if phase == "Active" and not apps.list_namespaced_deployment(name).items:
            return name
    raise CliError("no free namespace for the demo: demo, demo-2 … demo-99 are all in use")


def deploy(api: k8s.ApiClient, namespace: str, release: Release) -> None:
    """Create the app's Deployment from the example manifest, at ``release``."""
    deployment: Any = yaml.safe_load(APP_MANIFEST.read_text())  # the client takes plain JSON
    deployment["metadata"]["namespace"] = namespace
    template = deployment["spec"]["template"]
    template["spec"]["containers"][0]["image"] = release.image
    template["metadata"]["annotations"] = {
        **(template["metadata"].get("annotations") or {}),
        **release.annotations,
    }
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)


def ship(api: k8s.ApiClient, namespace: str, release: Release) -> None:
    """What CI does to ship a version: change the image (and the simulator's annotation)."""
    apps = k8s.AppsV1Api(api)
    live = api.sanitize_for_serialization(apps.read_namespaced_deployment(APP, namespace))
    container = live["spec"]["template"]["spec"]["containers"][0]["name"]
    annotations: dict[str, str | None] = {ERROR_RATE: None, **release.annotations}  # None: drop
    patch: Any = new_revision_patch(container, release.image, annotations)
    apps.patch_namespaced_deployment(APP, namespace, patch)


def delete_objects(api: k8s.ApiClient, namespace: str) -> None:
    """Delete :data:`DEMO_OBJECTS`; the namespace stays, empty, for the next run."""
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    custom = k8s.CustomObjectsApi(api)
    for kind, name in DEMO_OBJECTS:
        try:
            if kind == "deployments":
                apps.delete_namespaced_deployment(name, namespace)
            elif kind == "services":
                core.delete_namespaced_service(name, namespace)
            else:
                custom.delete_namespaced_custom_object(
                    "networking.istio.io", "v1", namespace, kind, name
                )
        except k8s.ApiException as error:
            if error.status != 404:
                raise


# =============================================================================
# Rollouts
# =============================================================================


@dataclass
class Announced:
    """A revision the demo told the workflow about.

    Attributes:
        handle: The target's canary workflow.
        revision: The hash of the template announced: the rollout to follow is this one's.
    """

    handle: WorkflowHandle[Any, OperatorStatus]
    revision: str


async def announce(
    temporal: Client, api: k8s.ApiClient, target: Target, spec: dict[str, Any], release: Release
) -> Announced:
    """Send ``NewRevision`` for the live template to the target's workflow, starting one.

    The event ID is derived from the revision, so a repeat (or a watcher's event for the
    same template) moves nothing twice.
    """
    live = api.sanitize_for_serialization(
        k8s.AppsV1Api(api).read_namespaced_deployment(target.name, target.namespace)
    )
    revision = pod_template_revision(live["spec"]["template"])
    event = EventEnvelope(
        id=f"demo:{target.namespace}/{target.name}:{revision}",
        type="NewRevision",
        payload={"revision": revision, "generation": live["metadata"].get("generation")},
        source=IDENTITY,
    )
    handle: WorkflowHandle[Any, OperatorStatus] = await temporal.start_workflow(
        "canary",
        OperatorInput(target=target, spec=spec),
        id=target.workflow_id("canary"),
        task_queue=DEFAULT_TASK_QUEUE,
        result_type=OperatorStatus,
        start_signal=EVENT_SIGNAL,
        start_signal_args=[event],
        static_summary=f"autopilot demo: {target.name} {release.label} "
        f"({release.tag}, {release.about})",
    )
    return Announced(handle, revision)


def is_over(status: OperatorStatus, revision: str) -> bool:
    """Whether the machine has stopped on its own *with the announced revision*.

    A workflow that already ended the previous rollout still shows that one's final state
    until it has handled the new ``NewRevision`` signal: that state is not this rollout's
    outcome.
    """
    return status.outcome != "running" and status.data.get("revision") == revision


async def follow(
    announced: Announced,
    api: k8s.ApiClient,
    release: Release,
    observer: Observer,
) -> Outcome:
    """Look at a rollout until the machine stops on its own; return how it ended.

    Raises:
        CliError: The workflow itself ended badly, or the rollout took far too long.
    """
    handle = announced.handle
    namespace = handle.id.split("/")[1]
    begun = time.monotonic()
    while True:
        status = await status_of(handle)
        seconds = time.monotonic() - begun
        observer.update(status, route_weights(api, namespace), seconds)
        if is_over(status, announced.revision):
            break
        if seconds > ROLLOUT_DEADLINE_S:
            raise CliError(f"{handle.id} did not finish within {ROLLOUT_DEADLINE_S:.0f}s")
        await asyncio.sleep(POLL_S)
    data = status.data
    return Outcome(
        release=release,
        state=status.state,
        outcome=str(data.get("outcome") or status.outcome),
        weights=[int(weight) for weight in data.get("applied_weights") or []],
        seconds=seconds,
        reason=str(data.get("failure") or status.error or ""),
    )


async def status_of(handle: WorkflowHandle[Any, OperatorStatus]) -> OperatorStatus:
    """The machine's status: its ``status`` query while it runs, its result once completed."""
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return await handle.query(
            STATUS_QUERY, result_type=OperatorStatus, rpc_timeout=timedelta(seconds=10)
        )
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    name = description.status.name.lower() if description.status else "unknown"
    raise CliError(f"workflow {handle.id} ended {name}; the Temporal UI shows why")


def route_weights(api: k8s.ApiClient, namespace: str) -> Weights | None:
    """The live VirtualService's ``(primary, canary)`` weights, or None before it exists."""
    try:
        vs: Any = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, "virtualservices", APP
        )
    except k8s.ApiException as error:
        if error.status == 404:
            return None
        raise
    found = {"primary": 0, "canary": 0}
    for route in vs["spec"]["http"][0]["route"]:
        kind = "canary" if route["destination"]["host"].endswith("-canary") else "primary"
        found[kind] = int(route.get("weight") or 0)
    return found["primary"], found["canary"]


async def terminate_open(address: str, workflows: set[str]) -> list[str]:
    """Terminate the workflows still running (a rolled-back canary waits for a human)."""
    temporal = await connect(address, TEMPORAL_NAMESPACE, identity=IDENTITY)
    ended = []
    for workflow in sorted(workflows):
        handle = temporal.get_workflow_handle(workflow)
        description = await handle.describe(rpc_timeout=timedelta(seconds=5))
        if description.status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("autopilot demo is over", rpc_timeout=timedelta(seconds=5))
            ended.append(workflow)
    return ended
