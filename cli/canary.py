"""``autopilot canary start``: start a canary rollout for a Deployment, or feed it a new revision.

What a watcher would do, from a terminal: it sends the canary workflow of the Deployment
(``canary/<namespace>/<name>``) a ``NewRevision`` event by signal-with-start, so the
workflow is started when none runs and simply told otherwise. The event carries the
Deployment's pod-template revision and generation: a repeated ``start`` for the same
revision is ignored by the workflow, a new one restarts the analysis on it.

The spec is checked here first, with the same loader the workflow uses, so a mistake is
reported with its field before anything changes in the cluster; so are its size bounds,
and a start Temporal would refuse for its size is not sent. A running workflow keeps the
spec it started with (it is the workflow's input), so a file with another spec is refused
with the differences named rather than ignored. With ``--image`` the Deployment's image is
changed first, so the revision is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.text import Text

from cli import plugin
from cli.connection import (
    AddressOption,
    Endpoint,
    NamespaceOption,
    open_client,
    resolve,
)
from cli.errors import CliError, Exit, friendly, run
from cli.operators import OperatorGroup
from cli.output import console
from models.canary import (
    CanarySpec,
    CanarySpecError,
    NewRevision,
    load_canary_spec,
    oversize_manifest,
    parse_manifest,
    spec_differences,
)
from models.errors import describe
from models.limits import MAX_MANIFEST_BYTES, TEMPORAL_PAYLOAD_LIMIT, format_size
from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, Target
from models.revisions import pod_template_revision

if TYPE_CHECKING:  # clients are imported once the spec file has passed its checks
    from temporalio.client import Client
    from temporalio.converter import DataConverter

    from cli.targets import Snapshot

#: The workflow type of the canary operator.
CANARY = "canary"
#: How long ``start`` waits for a run in a final state to close before a new one starts.
FINISHING_WAIT = timedelta(seconds=30)

canary_app = typer.Typer(
    name="canary",
    cls=OperatorGroup,
    help="Progressive delivery: start a canary rollout for a Deployment, and steer it "
    "(every command of the canary operator: approve, promote, abort, ...).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@dataclass(frozen=True)
class SpecFile:
    """A canary spec loaded from a file, with the namespace its manifest names (if any)."""

    spec: CanarySpec
    namespace: str | None
    path: Path


#: Problems shown for one spec file; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


def load_spec_file(path: Path) -> SpecFile:
    """Load and check a canary spec file (a ``Canary`` manifest or a bare spec).

    Why read with a bound: a file over the manifest limit is refused before a byte of it
    is parsed, and the YAML is parsed once, so a wrong file fails in well under a second.

    Raises:
        CliError: The file cannot be read, or the spec is invalid; every problem names its
            field (exit code 2).
    """
    try:
        with path.open("rb") as stream:
            content = stream.read(MAX_MANIFEST_BYTES + 1)
            on_disk = os.fstat(stream.fileno()).st_size
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", Exit.INVALID) from None
    try:
        if len(content) > MAX_MANIFEST_BYTES:
            raise CanarySpecError([oversize_manifest(on_disk if on_disk > len(content) else None)])
        try:
            text = content.decode()
        except UnicodeDecodeError as error:
            raise CanarySpecError([f"(document): not UTF-8 text ({error.reason})"]) from None
        raw: Any = parse_manifest(text)
        spec = load_canary_spec(raw)
    except CanarySpecError as error:
        raise CliError(
            f"invalid canary spec in {path}:\n{_listed(error.problems)}",
            Exit.INVALID,
            hint="docs/operators/canary.md describes every field and its bounds",
        ) from None
    metadata = raw.get("metadata") if isinstance(raw, dict) and "spec" in raw else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return SpecFile(
        spec=spec, namespace=namespace if isinstance(namespace, str) else None, path=path
    )


def _listed(problems: list[str]) -> str:
    """Problems one per line, indented; after :data:`MAX_PROBLEMS_SHOWN`, a count."""
    lines = [f"  {line}" for line in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(lines)


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
        return Target(
            namespace=namespace or plugin.default_namespace() or "default", name=deployment
        )
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
    loaded: SpecFile | None,
    *,
    image: str | None,
    container: str | None,
    task_queue: str,
    by: str,
) -> Started:
    """Signal-with-start the canary workflow of ``target`` with its current revision.

    Without a spec, a workflow that is not running starts with the spec of its previous
    run. A running workflow keeps its spec: a file that differs from it is refused (exit 1)
    with the differences named, before anything changes; an identical one is accepted. A
    running workflow already handling this revision is left alone.
    """
    from cli.targets import temporal_errors

    client = await open_client(endpoint, identity=by)
    workflow = target.workflow_id(CANARY)
    current = await _after_finishing(client, endpoint, await _current(client, endpoint, workflow))
    running = current is not None and current.running
    spec = loaded.spec if loaded is not None else None
    if running and current is not None and loaded is not None:
        _refuse_another_spec(current, loaded)
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
            start = OperatorInput(target=target, spec=spec.model_dump(mode="json", by_alias=True))
            path = loaded.path if loaded else None
            await refuse_oversize(client.data_converter, start, envelope, path)
            from service.starts import start_operator

            stable = current.status.data.get("stable_revision") if current is not None else None
            await start_operator(
                client,
                CANARY,
                start,
                task_queue=task_queue,
                started_by=f"{by} (autopilot canary start)",
                signal=(EVENT_SIGNAL, envelope),
                stable=stable if isinstance(stable, str) else None,
            )
    return started


def _refuse_another_spec(current: Snapshot, loaded: SpecFile) -> None:
    """Refuse a file whose spec is not the one the running workflow has (exit 1).

    Why refuse: the spec is the workflow's input, fixed for its run (a ``Failed`` canary
    keeps running, waiting for ``retry`` or a new revision); a signal cannot change it, so
    sending the file would ignore it without a word.
    """
    status = current.status
    workflow = status.workflow_id
    hint = (
        f"to roll out with the spec of {loaded.path}: 'autopilot abort {workflow}', then run "
        f"this again (with --image for a new revision, or follow it with 'autopilot retry "
        f"{workflow}')"
    )
    if status.outcome != "failed":
        hint += f"; or run this again once the rollout succeeded ('autopilot watch {workflow}')"
    if not status.spec:
        raise CliError(
            f"cannot tell whether {loaded.path} has the spec {workflow} runs with: "
            f"{current.note or 'its status shows no spec'}",
            hint=f"start the worker, or leave out -f to keep the running spec; {hint}",
        )
    changes = spec_differences(status.spec, loaded.spec)
    if changes:
        raise CliError(
            f"{workflow} (state {status.state}) runs with another spec than {loaded.path}, "
            f"and a running canary keeps the spec it started with:\n{_listed(changes)}",
            hint=hint,
        )


async def refuse_oversize(
    converter: DataConverter, start: OperatorInput, envelope: EventEnvelope, path: Path | None
) -> None:
    """Refuse a start Temporal would refuse for its size, before it is sent (exit 2).

    Temporal rejects a request whose payloads pass its blob limit, with a message that
    names neither file nor field; the spec is what can grow, so it is what is named.
    """
    payloads = await converter.encode([start, envelope])
    size = sum(payload.ByteSize() for payload in payloads)
    if size > TEMPORAL_PAYLOAD_LIMIT:
        where = f"{path}: " if path is not None else ""
        raise CliError(
            f"{where}spec: the workflow input would be {format_size(size)}; Temporal "
            f"accepts at most {format_size(TEMPORAL_PAYLOAD_LIMIT)}",
            Exit.INVALID,
            hint="docs/operators/canary.md lists the bounds of a canary spec",
        )


async def _current(client: Client, endpoint: Endpoint, workflow: str) -> Snapshot | None:
    """The latest run of ``workflow``, running or not; ``None`` if there never was one."""
    from cli.targets import snapshot

    try:
        return await snapshot(client, endpoint, workflow)
    except CliError as error:
        if error.code == Exit.UNKNOWN_TARGET:
            return None
        raise


async def _after_finishing(
    client: Client, endpoint: Endpoint, current: Snapshot | None
) -> Snapshot | None:
    """``current`` once closed, if it is finishing (a final state, its last workers running).

    Why wait: a finishing run takes no new event, and signal-with-start would signal it
    rather than start a new run, so the revision (and the file) would be dropped unsaid;
    ``abort`` followed at once by ``canary start`` is just that case.
    """
    from temporalio.client import WorkflowFailureError

    from cli.targets import temporal_errors

    if current is None or not current.running or not current.status.final:
        return current
    workflow = current.status.workflow_id
    handle = client.get_workflow_handle(workflow)
    with (
        temporal_errors(endpoint, workflow),
        contextlib.suppress(WorkflowFailureError, TimeoutError),
    ):
        await asyncio.wait_for(handle.result(), FINISHING_WAIT.total_seconds())
    later = await _current(client, endpoint, workflow)
    if later is not None and later.running and later.status.final:
        raise CliError(
            f"{workflow} is finishing (state {later.status.state}) and has not closed "
            f"after {FINISHING_WAIT.total_seconds():g}s",
            hint=f"try again once 'autopilot status {workflow}' shows it closed",
        )
    return later


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
    from cli import kube

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
            help="Its namespace. Default: the manifest's metadata.namespace, else 'default' "
            "(as kubectl autopilot: the kubeconfig context's namespace).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Canary spec: a Canary manifest (Flagger's fields) or a bare spec. "
            "Needed to start; a running canary keeps its spec, so a different one is "
            "refused (exit 1).",
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

    The spec is checked first (exit 2 names the field or the bound). A spec that differs
    from the one a running canary has is refused (exit 1, naming the differences). Exit
    codes: 4 no such Deployment, 5 Temporal unreachable, 6 Kubernetes unreachable.
    """
    loaded = load_spec_file(file) if file is not None else None
    if loaded is not None and loaded.spec.suspend:
        # Flagger's suspend starts no run; a workflow started paused would still initialise.
        raise CliError(
            f"{loaded.path}: spec.suspend is true: a suspended canary starts no rollout",
            Exit.INVALID,
            hint="set suspend: false (or remove it) to start; to hold a running canary, "
            "`autopilot pause` it or set suspend: true on its Canary resource",
        )
    target = _target(deployment, namespace, loaded)
    endpoint = resolve(address, temporal_namespace)
    by = endpoint.settings.identity
    started = run(
        start_canary(
            endpoint,
            target,
            loaded,
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
        if loaded is not None:
            out.print(f"  {loaded.path} has the spec it already runs with")
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
        out.print(f"  {loaded.path} has the spec it already runs with")
    out.print(f"  follow it:  autopilot watch {started.workflow_id}")
    out.print(f"  Temporal UI: {endpoint.workflow_url(started.workflow_id)}")
