"""``autopilot canary start``: start a canary rollout for a Deployment, or feed it a new revision.

What a watcher would do, from a terminal: it sends the canary workflow of the Deployment
(``canary/<namespace>/<name>``) a ``NewRevision`` event by signal-with-start, so the
workflow is started when none runs and simply told otherwise. The event carries the
Deployment's pod-template revision and generation: a repeated ``start`` for the same
revision is ignored by the workflow, a new one restarts the analysis on it.

The spec is checked here first, with the same loader the workflow uses, so a mistake is
reported with its field before anything changes in the cluster. With ``--image`` the
Deployment's image is changed first, so the revision is real.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.text import Text
from temporalio.client import Client

from cli import kube
from cli.connection import (
    AddressOption,
    Endpoint,
    NamespaceOption,
    open_client,
    resolve,
)
from cli.errors import CliError, Exit, friendly, run
from cli.output import console
from cli.targets import Snapshot, snapshot, temporal_errors
from models.canary import (
    CanarySpec,
    CanarySpecError,
    NewRevision,
    load_canary_spec,
    pod_template_revision,
)
from models.errors import describe
from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, Target

#: The workflow type of the canary operator.
CANARY = "canary"

canary_app = typer.Typer(
    name="canary",
    help="Progressive delivery: start a canary rollout for a Deployment.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@dataclass(frozen=True)
class SpecFile:
    """A canary spec loaded from a file, with the namespace its manifest names (if any)."""

    spec: CanarySpec
    namespace: str | None


def load_spec_file(path: Path) -> SpecFile:
    """Load and check a canary spec file (a ``Canary`` manifest or a bare spec).

    Raises:
        CliError: The file cannot be read, or the spec is invalid; every problem names its
            field (exit code 2).
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", Exit.INVALID) from None
    try:
        spec = load_canary_spec(text)
    except CanarySpecError as error:
        problems = "\n".join(f"  {line}" for line in error.problems)
        raise CliError(
            f"invalid canary spec in {path}:\n{problems}",
            Exit.INVALID,
            hint="docs/operators/canary.md describes every field",
        ) from None
    raw: Any = yaml.safe_load(text)
    metadata = raw.get("metadata") if isinstance(raw, dict) and "spec" in raw else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return SpecFile(spec=spec, namespace=namespace if isinstance(namespace, str) else None)


def _target(deployment: str, namespace: str | None, loaded: SpecFile | None) -> Target:
    if loaded is not None:
        if namespace and loaded.namespace and namespace != loaded.namespace:
            raise CliError(
                f"metadata.namespace: the spec says {loaded.namespace!r}, -n says {namespace!r}",
                Exit.INVALID,
            )
        if loaded.spec.target_ref.name != deployment:
            raise CliError(
                f"spec.targetRef.name: the spec rolls out {loaded.spec.target_ref.name!r}, "
                f"not Deployment {deployment!r}",
                Exit.INVALID,
            )
        namespace = namespace or loaded.namespace
    try:
        return Target(namespace=namespace or "default", name=deployment)
    except ValidationError as error:
        raise CliError(f"invalid target: {describe(error)}", Exit.INVALID) from None


@dataclass(frozen=True)
class Started:
    """What ``start`` did."""

    workflow_id: str
    new_workflow: bool
    revision: str
    generation: int | None
    image_changed: bool
    reused_spec: bool = False
    sent: bool = True
    state: str | None = None


async def start_canary(
    endpoint: Endpoint,
    target: Target,
    spec: CanarySpec | None,
    *,
    image: str | None,
    container: str | None,
    task_queue: str,
    by: str,
) -> Started:
    """Signal-with-start the canary workflow of ``target`` with its current revision.

    Without a spec, a workflow that is not running starts with the spec of its previous
    run. A running workflow already handling this revision is left alone.
    """
    client = await open_client(endpoint, identity=by)
    workflow = target.workflow_id(CANARY)
    current = await _current(client, endpoint, workflow)
    running = current is not None and current.running
    reused = False
    if not running and spec is None:
        spec = _spec_of(current)
        reused = spec is not None
    if not running and spec is None:
        raise CliError(
            f"no canary runs for {target.namespace}/{target.name}, and no spec was given",
            Exit.INVALID,
            hint=f"autopilot canary start {target.name} -n {target.namespace} -f canary.yaml",
        )
    deployment, changed = _new_revision(target, image, container)
    revision = pod_template_revision(deployment["spec"]["template"])
    generation = deployment["metadata"].get("generation")
    started = Started(
        workflow_id=workflow,
        new_workflow=not running,
        revision=revision,
        generation=generation,
        image_changed=changed,
        reused_spec=reused,
        state=current.status.state if current is not None and running else None,
    )
    if running and current is not None and current.status.data.get("revision") == revision:
        return replace(started, sent=False)
    event = NewRevision(revision=revision, generation=generation)
    envelope = EventEnvelope(
        id=f"cli:{target.namespace}/{target.name}:generation-{generation}:{revision}",
        type=NewRevision.type_name(),
        payload=event.model_dump(mode="json"),
        source=f"autopilot canary start by {by}",
    )
    with temporal_errors(endpoint, workflow):
        if spec is None:
            # Running, and no spec to start with: a plain signal, so that a workflow that
            # ended meanwhile is reported as gone instead of restarted without a spec.
            await client.get_workflow_handle(workflow).signal(EVENT_SIGNAL, envelope)
        else:
            await client.start_workflow(
                CANARY,
                OperatorInput(target=target, spec=spec.model_dump(mode="json", by_alias=True)),
                id=workflow,
                task_queue=task_queue,
                start_signal=EVENT_SIGNAL,
                start_signal_args=[envelope],
            )
    return started


async def _current(client: Client, endpoint: Endpoint, workflow: str) -> Snapshot | None:
    """The latest run of ``workflow``, running or not; ``None`` if there never was one."""
    try:
        return await snapshot(client, endpoint, workflow)
    except CliError as error:
        if error.code == Exit.UNKNOWN_TARGET:
            return None
        raise


def _spec_of(previous: Snapshot | None) -> CanarySpec | None:
    """The spec a previous run had, if it was valid."""
    if previous is None or not previous.status.spec:
        return None
    try:
        return CanarySpec.model_validate(previous.status.spec)
    except ValidationError:
        return None


def _new_revision(
    target: Target, image: str | None, container: str | None
) -> tuple[dict[str, Any], bool]:
    """The Deployment, after setting ``image`` if given; and whether that changed it."""
    api = kube.api_client()
    try:
        if image is None:
            return kube.read_deployment(api, target.namespace, target.name), False
        before = kube.read_deployment(api, target.namespace, target.name)
        after = kube.set_image(api, target.namespace, target.name, image, container)
        generation = before["metadata"].get("generation")
        return after, generation != after["metadata"].get("generation")
    finally:
        api.close()


@canary_app.command(
    "start",
    epilog="Examples:\n\n"
    "  autopilot canary start podinfo -n test -f deploy/examples/canary.yaml\n\n"
    "  autopilot canary start podinfo -n test --image ghcr.io/stefanprodan/podinfo:6.5.1",
)
@friendly
def start_command(
    deployment: Annotated[str, typer.Argument(help="The Deployment to roll out.")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Its namespace. Default: the manifest's metadata.namespace, else 'default'.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Canary spec: a Canary manifest (Flagger's fields) or a bare spec. "
            "Needed to start; a running canary keeps the spec it has.",
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option("--image", help="Set this image on the Deployment first (the new revision)."),
    ] = None,
    container: Annotated[
        str | None,
        typer.Option("--container", help="With --image: which container (default: the first)."),
    ] = None,
    task_queue: Annotated[
        str | None,
        typer.Option(
            "--task-queue",
            help="Task queue of the worker. Default: AUTOPILOT_TEMPORAL_TASK_QUEUE or 'autopilot'.",
            show_default=False,
        ),
    ] = None,
    address: AddressOption = None,
    temporal_namespace: NamespaceOption = None,
) -> None:
    """Start the canary of DEPLOYMENT, or send its new revision to the running one.

    The spec is checked first (exit 2 names the field). Exit codes: 4 no such Deployment,
    5 Temporal unreachable, 6 Kubernetes unreachable.
    """
    loaded = load_spec_file(file) if file is not None else None
    target = _target(deployment, namespace, loaded)
    endpoint = resolve(address, temporal_namespace)
    by = endpoint.settings.identity
    started = run(
        start_canary(
            endpoint,
            target,
            loaded.spec if loaded else None,
            image=image,
            container=container,
            task_queue=task_queue or endpoint.settings.task_queue,
            by=by,
        )
    )
    out = console()
    if started.image_changed:
        out.print(f"set image {image} on Deployment {target.namespace}/{target.name}")
    if not started.sent:
        out.print(
            Text.assemble(
                ("✓ ", "green"),
                (started.workflow_id, "bold"),
                f" already rolls out revision {started.revision} (state {started.state}); "
                "nothing to send",
            )
        )
        out.print(f"  to roll it out again after a failure: autopilot retry {started.workflow_id}")
        return
    verb = "started" if started.new_workflow else "sent the new revision to"
    out.print(
        Text.assemble(
            ("✓ ", "green"),
            f"{verb} ",
            (started.workflow_id, "bold"),
            f" (revision {started.revision}, generation {started.generation})",
        )
    )
    if started.reused_spec:
        out.print("  with the spec of its previous run (give -f to change it)")
    if loaded is not None and not started.new_workflow:
        out.print(
            "[yellow]note:[/] the running canary keeps its spec; to change it, "
            f"'autopilot abort {started.workflow_id}' and start again"
        )
    out.print(f"  follow it:  autopilot watch {started.workflow_id}")
    out.print(f"  Temporal UI: {endpoint.workflow_url(started.workflow_id)}")
