"""The autoroute operator's workers: read the pushed manifest, find conflicts, write, verify.

What is written (``docs/operators/autoroute.md`` lists it too): one Istio VirtualService per
Service, ``<service>-route`` in the Service's namespace, bound to the route's gateway, with
one http route: ``uri.prefix: <path>`` to ``<service>.<namespace>.svc.cluster.local``
(port, timeout and retries when the annotations ask). It carries the marks of
:class:`activities.kube.Owner` (``autopilot.dev/managed-by: autoroute``, the workflow), so a
VirtualService of that name that lacks them belongs to someone else and is never replaced.

Every worker is idempotent. In ``pull-request`` mode the VirtualService goes through the
GitOps layer (:mod:`activities.gitops.pulls`) on a branch named by the request's
fingerprint, so every attempt, and every trigger of the same request, finds one branch and
one pull request.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Mapping
from string import Template
from typing import Any

import aiohttp
import yaml
from github import GithubException
from requests import RequestException
from temporalio import activity

import activities.kube as kube
from activities.canary.metrics import QUERY_ERRORS, prometheus
from activities.errors import non_retryable
from activities.gitops.errors import github_failure
from activities.gitops.pulls import open_pull_request_now, read_pull_request_now
from models.autoroute import (
    OPERATOR,
    ROUTE,
    AutorouteData,
    AutorouteSpec,
    DriftChecked,
    ManifestRead,
    RouteApplied,
    RoutePlanned,
    RouteRemoved,
    RouteRequest,
    RouteRequestError,
    RouteVerified,
    parse_route,
    route_name,
)
from models.gitops import PullRequestChange, PullRequestRef, PutManifest, RemoveManifest
from models.gitops_modes import NOT_CONFIGURED, PullRequestPolled
from models.operator import StepInput
from models.promql import value_of
from service.github import GitHubNotConfigured, credentials, github_client
from service.settings import AutorouteSettings, GitOpsSettings, PrometheusSettings

Step = StepInput[AutorouteSpec, AutorouteData]
Json = kube.Json

AUTOROUTE = kube.Owner(OPERATOR, refusals_are_final=True)
#: The VirtualService's API.
GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
#: The simulator's client requests this path through the route (Istio ignores it).
SIM_PATH = "sim.autopilot.dev/path"
PROBE_TIMEOUT_S = 5.0


def _request(step: Step) -> RouteRequest:
    if step.data.request is None:
        raise non_retryable("no route request to act on")
    return step.data.request


def _where(step: Step) -> str:
    return f"{step.target.namespace}/{route_name(step.target.name)}"


def _prefix(path: str) -> str:
    return path.rstrip("/") or "/"


def wanted_route(step: Step) -> Json:
    """The VirtualService for the step's Service and request."""
    request = _request(step)
    target = step.target
    destination: Json = {"host": f"{target.name}.{target.namespace}.svc.cluster.local"}
    if request.port is not None:
        destination["port"] = {"number": request.port}
    http: Json = {
        "name": f"{target.namespace}-{target.name}"[:63],
        "match": [{"uri": {"prefix": _prefix(request.path)}}],
        "route": [{"destination": destination}],
    }
    if request.timeout is not None:
        http["timeout"] = request.timeout
    if request.retries is not None:
        http["retries"] = {"attempts": request.retries}
    annotations = {ROUTE: request.claim, SIM_PATH: request.path}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": AUTOROUTE.metadata(
            route_name(target.name), target.namespace, step.workflow_id, annotations=annotations
        ),
        "spec": {"hosts": [request.host], "gateways": [request.gateway], "http": [http]},
    }


# =============================================================================
# Reading the pushed manifest
# =============================================================================


def service_in(text: str, name: str) -> Json | None:
    """The Service ``name`` among the YAML documents of a file, or ``None``."""
    for document in yaml.safe_load_all(text):
        if not isinstance(document, dict) or document.get("kind") != "Service":
            continue
        if (document.get("metadata") or {}).get("name") == name:
            return document
    return None


def _read_file_now(repository: str, path: str, commit: str) -> str | None:
    settings = GitOpsSettings()
    try:
        auth, secret = credentials(settings)
    except GitHubNotConfigured as error:
        raise non_retryable(f"reading {path} from {repository}: {error}") from None
    try:
        found = github_client(settings, auth).get_repo(repository).get_contents(path, ref=commit)
    except GithubException as error:
        if error.status == 404:
            return None
        raise github_failure(error, f"reading {path} at {commit[:12]}", secret) from None
    except RequestException as error:
        raise github_failure(error, f"reading {path} at {commit[:12]}", secret) from None
    if isinstance(found, list):
        raise non_retryable(f"{path} is a directory in {repository}")
    return found.decoded_content.decode()


@activity.defn(name=f"{OPERATOR}.read_manifest")
async def read_manifest(step: Step) -> ManifestRead:
    """Read the Service manifest at the pushed commit; what route its annotations ask for."""
    data = step.data
    text = await asyncio.to_thread(
        _read_file_now, data.git_repository, data.git_path, data.git_commit
    )
    if text is None:
        return ManifestRead(found=False)
    try:
        service = service_in(text, step.target.name)
    except yaml.YAMLError as error:
        return ManifestRead(error=f"not YAML: {str(error)[:300]}")
    if service is None:
        return ManifestRead(error=f"holds no Service named {step.target.name}")
    namespace = (service.get("metadata") or {}).get("namespace")
    if namespace not in (None, step.target.namespace):
        return ManifestRead(
            error=f"the Service is in namespace {namespace}, not {step.target.namespace}"
        )
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    try:
        request = parse_route({str(k): str(v) for k, v in annotations.items()})
    except RouteRequestError as error:
        return ManifestRead(error=str(error)[:2048])
    return ManifestRead(request=request)


# =============================================================================
# Planning: who claims the host and path
# =============================================================================


def _uri_prefixes(route: Json) -> list[str]:
    """The paths an http route claims: its ``uri`` prefixes and exacts; ``/`` without match."""
    matches = route.get("match") or []
    if not matches:
        return ["/"]
    found = []
    for match in matches:
        uri = match.get("uri") or {}
        for kind in ("prefix", "exact"):
            if isinstance(uri.get(kind), str):
                found.append(_prefix(uri[kind]))
        if not uri:
            found.append("/")
    return found


def claimed_by(virtual_service: Json, host: str, path: str) -> bool:
    """Whether a VirtualService already sends ``host`` + ``path`` somewhere."""
    spec = virtual_service.get("spec") or {}
    hosts = [str(h).lower() for h in spec.get("hosts") or []]
    wildcard = any(h.startswith("*.") and host.endswith(h[1:]) for h in hosts)
    if host not in hosts and not wildcard:
        return False
    wanted = _prefix(path)
    return any(wanted in _uri_prefixes(route) for route in spec.get("http") or [])


def _destinations(virtual_service: Json) -> list[str]:
    hosts = []
    for route in (virtual_service.get("spec") or {}).get("http") or []:
        for entry in route.get("route") or []:
            host = (entry.get("destination") or {}).get("host")
            if host:
                hosts.append(str(host).split(".svc")[0])
    return sorted(set(hosts))


def describe_claim(virtual_service: Json, step: Step) -> str:
    """The conflict's message: the route that claims it, where it goes, and who is refused."""
    request = _request(step)
    meta = virtual_service.get("metadata") or {}
    owner = (meta.get("annotations") or {}).get(kube.WORKFLOW)
    by = f", written by {owner}" if owner else ""
    to = ", ".join(_destinations(virtual_service)) or "no Service"
    return (
        f"{request.claim} is already routed by VirtualService {meta.get('namespace')}/"
        f"{meta.get('name')} (to Service {to}{by}); Service {step.target.namespace}/"
        f"{step.target.name} is not routed. That route was left as it is: remove it, or change "
        f"the {ROUTE} annotation of {step.target.namespace}/{step.target.name}, then retry"
    )


async def find_conflict(step: Step) -> str | None:
    """Another VirtualService that claims the host and path, or ours taken by someone else."""
    request = _request(step)
    listed = await AUTOROUTE.call(kube.custom().list_cluster_custom_object, GROUP, VERSION, PLURAL)
    items: list[Json] = (kube.to_dict(listed) or {}).get("items") or []
    ours = (step.target.namespace, route_name(step.target.name))
    for item in sorted(items, key=lambda i: str((i.get("metadata") or {}).get("name"))):
        meta = item.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        annotations = meta.get("annotations") or {}
        if key == ours and annotations.get(kube.WORKFLOW) == step.workflow_id:
            continue
        if key == ours and not AUTOROUTE.owns(item):
            return (
                f"VirtualService {_where(step)} exists and is not managed by autopilot; "
                f"Service {step.target.namespace}/{step.target.name} is not routed "
                f"(delete it, or annotate it {kube.MANAGED_BY}={OPERATOR} to hand it over)"
            )
        if claimed_by(item, request.host, request.path):
            return describe_claim(item, step)
    return None


@activity.defn(name=f"{OPERATOR}.plan_route")
async def plan_route(step: Step) -> RoutePlanned:
    """Look at every VirtualService: does one already claim the request's host and path?"""
    return RoutePlanned(virtual_service=_where(step), conflict=await find_conflict(step))


# =============================================================================
# Applying
# =============================================================================


async def _read(step: Step) -> Json | None:
    return await AUTOROUTE.read_or_none(
        kube.custom().get_namespaced_custom_object,
        GROUP,
        VERSION,
        step.target.namespace,
        PLURAL,
        route_name(step.target.name),
    )


def _differs(live: Json, wanted: Json) -> bool:
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    marks = wanted["metadata"]["annotations"]
    return live.get("spec") != wanted["spec"] or any(
        annotations.get(k) != v for k, v in marks.items()
    )


async def write_route(step: Step) -> bool:
    """Create or correct the VirtualService; whether anything was written."""
    wanted = wanted_route(step)
    api = kube.custom()
    name = route_name(step.target.name)
    namespace = step.target.namespace

    changed: bool = await kube.ensure(
        wanted,
        lambda: _read(step),
        lambda body: AUTOROUTE.call(
            api.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            body,
            field_manager=AUTOROUTE.field_manager,
        ),
        AUTOROUTE.correction(wanted, _differs),
        lambda body: AUTOROUTE.call(
            api.replace_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body,
            field_manager=AUTOROUTE.field_manager,
        ),
    )
    return changed


def _gitops() -> GitOpsSettings | None:
    settings = GitOpsSettings()
    return settings if settings.repository else None


def _git_manifest(step: Step) -> Json:
    """The VirtualService as git holds it (no status, nothing the server adds)."""
    return wanted_route(step)


@activity.defn(name=f"{OPERATOR}.apply_route")
async def apply_route(step: Step) -> RouteApplied:
    """Write the VirtualService (direct), or open the pull request that writes it.

    The conflict check runs again first: another route may have claimed the host and path
    since planning.
    """
    request = _request(step)
    conflict = await find_conflict(step)
    if conflict is not None:
        return RouteApplied(outcome="conflict", conflict=conflict)
    settings = _gitops() if request.mode == "pull-request" else None
    if settings is None:
        changed = await write_route(step)
        outcome = "applied" if changed else "unchanged"
        if request.mode == "pull-request":
            outcome = NOT_CONFIGURED
        activity.logger.info("VirtualService %s: %s", _where(step), outcome)
        return RouteApplied(outcome=outcome)
    target = f"{step.target.namespace}/{step.target.name}"
    change = PullRequestChange(
        workflow_id=step.workflow_id,
        step_key=f"route-{request.fingerprint()}",
        title=f"autoroute: route {request.claim} to {target}",
        why=(
            f"The Service {target} asks for the route {request.claim} ({step.data.requested_by}). "
            f"Merging writes the VirtualService {_where(step)} (gateway {request.gateway}); the "
            "GitOps engine applies it and Autopilot verifies that traffic reaches the Service. "
            "Closing it leaves the Service without a route."
        ),
        changes=[PutManifest(manifest=_git_manifest(step))],
    )
    opened = await asyncio.to_thread(open_pull_request_now, change)
    if opened.outcome == "unchanged":
        return RouteApplied(outcome="unchanged", poll_interval_s=settings.poll_interval_s)
    return RouteApplied(
        outcome=opened.outcome,
        number=opened.number,
        url=opened.url or "",
        poll_interval_s=settings.poll_interval_s,
    )


@activity.defn(name=f"{OPERATOR}.poll_pull_request")
async def poll_pull_request(step: Step) -> PullRequestPolled:
    """Read the route's pull request once: open, merged or closed unmerged."""
    if step.data.pr is None:
        raise non_retryable("no pull request to read")
    state = await asyncio.to_thread(read_pull_request_now, PullRequestRef(number=step.data.pr))
    return PullRequestPolled(
        number=state.number, state=state.state, merge_sha=state.merge_sha, url=state.url
    )


# =============================================================================
# Verifying: ready backends, then traffic
# =============================================================================


def _selects(selector: Mapping[str, str], deployment: Json) -> bool:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    labels = template.get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


async def ready_backends(step: Step) -> tuple[int, str]:
    """Ready replicas of the Deployments the Service selects, or why there are none."""
    namespace, name = step.target.namespace, step.target.name
    service = await AUTOROUTE.read_or_none(kube.core().read_namespaced_service, name, namespace)
    if service is None:
        return 0, f"Service {namespace}/{name} is not in the cluster yet"
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return 0, f"Service {namespace}/{name} has no selector"
    listed = await AUTOROUTE.call(kube.apps().list_namespaced_deployment, namespace)
    deployments = (kube.to_dict(listed) or {}).get("items") or []
    ready = sum(
        int((d.get("status") or {}).get("readyReplicas") or 0)
        for d in deployments
        if _selects(selector, d)
    )
    if not ready:
        return (
            0,
            f"no ready backends: no Deployment selected by Service {namespace}/{name} is ready",
        )
    return ready, f"{ready} ready backend(s)"


def verify_query(step: Step, template: str) -> str:
    """The query or probe URL for the route: ``$namespace``, ``$service``, ``$host``, ``$path``."""
    request = _request(step)
    return Template(template).safe_substitute(
        namespace=step.target.namespace,
        service=step.target.name,
        host=request.host,
        path=request.path,
    )


async def _probe(url: str, host: str) -> tuple[bool, str]:
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers={"Host": host}, allow_redirects=False) as response,
        ):
            ok = response.status != 404 and response.status < 500
            return ok, f"probe GET {url} (Host {host}) answered {response.status}"
    except (aiohttp.ClientError, TimeoutError) as error:
        return False, f"probe GET {url} failed: {type(error).__name__}"


async def traffic(step: Step) -> tuple[bool, float | None, str]:
    """Whether traffic through the route reaches the Service: the probe, else PromQL."""
    settings = AutorouteSettings()
    request = _request(step)
    if settings.probe_url:
        ok, detail = await _probe(verify_query(step, settings.probe_url), request.host)
        return ok, None, detail
    query = verify_query(step, settings.verify_query)
    url = PrometheusSettings().url
    try:
        value = value_of(await asyncio.to_thread(prometheus(url).custom_query, query))
    except QUERY_ERRORS as error:
        return False, None, f"Prometheus at {url} failed: {type(error).__name__}"
    if value is None or value <= 0:
        return False, value, f"no requests through {request.claim} reached the Service yet"
    return True, value, f"{value:.3g} requests/s through {request.claim} reach the Service"


@activity.defn(name=f"{OPERATOR}.verify_route")
async def verify_route(step: Step) -> RouteVerified:
    """One check: the VirtualService is in the cluster, backends are ready, traffic arrives."""
    live = await _read(step)
    if live is None or not AUTOROUTE.owns(live):
        how = "the GitOps engine has not applied it" if step.data.pr else "it is missing"
        return RouteVerified(
            ok=False, detail=f"VirtualService {_where(step)} not in the cluster: {how}"
        )
    backends, why = await ready_backends(step)
    if not backends:
        return RouteVerified(ok=False, detail=why)
    ok, value, detail = await traffic(step)
    return RouteVerified(ok=ok, backends=backends, requests=value, detail=f"{why}; {detail}")


# =============================================================================
# Drift
# =============================================================================


def _shown(obj: Json) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines()


def drift_diff(live: Json, wanted: Json) -> str:
    """The hand edit, as a unified diff of the spec (``-`` generated, ``+`` live)."""
    lines = difflib.unified_diff(
        _shown(wanted.get("spec") or {}),
        _shown(live.get("spec") or {}),
        "generated",
        "live",
        lineterm="",
    )
    return "\n".join(lines)


@activity.defn(name=f"{OPERATOR}.check_drift")
async def check_drift(step: Step) -> DriftChecked:
    """Compare the live VirtualService with ours; put it back when the policy says restore.

    In ``pull-request`` mode git owns the route: the GitOps engine puts it back, and the
    drift is only reported.
    """
    request = _request(step)
    wanted = wanted_route(step)
    live = await _read(step)
    restore = request.drift == "restore" and request.mode == "direct"
    if live is None:
        return DriftChecked(diff="the VirtualService was deleted", gone=True)
    if live.get("spec") == wanted["spec"]:
        return DriftChecked()
    diff = drift_diff(live, wanted)[:4096]
    if restore:
        await write_route(step)
        activity.logger.info("VirtualService %s: hand edit put back", _where(step))
    return DriftChecked(diff=diff, restored=restore)


# =============================================================================
# Removing
# =============================================================================


async def delete_route(step: Step) -> bool:
    """Delete our VirtualService; an absent one, or one that is not ours, is left."""

    async def attempt() -> bool:
        live = await _read(step)
        if live is None or not AUTOROUTE.owns(live):
            return False
        return await AUTOROUTE.delete_exactly(
            live,
            kube.custom().delete_namespaced_custom_object,
            GROUP,
            VERSION,
            step.target.namespace,
            PLURAL,
            route_name(step.target.name),
        )

    removed, _ = await kube.retry_conflicts(attempt, f"VirtualService {_where(step)}")
    return removed


@activity.defn(name=f"{OPERATOR}.remove_route")
async def remove_route(step: Step) -> RouteRemoved:
    """Delete the VirtualService (direct), or open the pull request removing its file."""
    request = step.data.request
    settings = _gitops() if request is not None and request.mode == "pull-request" else None
    if settings is None or request is None:
        removed = await delete_route(step)
        if request is not None and request.mode == "pull-request":
            return RouteRemoved(outcome=NOT_CONFIGURED)
        return RouteRemoved(outcome="deleted" if removed else "absent")
    target = f"{step.target.namespace}/{step.target.name}"
    change = PullRequestChange(
        workflow_id=step.workflow_id,
        step_key=f"remove-{request.fingerprint()}",
        title=f"autoroute: remove the route {request.claim} of {target}",
        why=(
            f"{step.data.removal or 'The Service asks for no route any more'}. Merging removes "
            f"the VirtualService {_where(step)} from git; the GitOps engine prunes it."
        ),
        changes=[
            RemoveManifest(
                kind="VirtualService",
                namespace=step.target.namespace,
                name=route_name(step.target.name),
            )
        ],
    )
    opened = await asyncio.to_thread(open_pull_request_now, change)
    if opened.outcome == "unchanged":
        return RouteRemoved(outcome="unchanged")
    return RouteRemoved(outcome=opened.outcome, number=opened.number, url=opened.url or "")


#: Every activity of the operator, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [
    read_manifest,
    plan_route,
    apply_route,
    poll_pull_request,
    verify_route,
    check_drift,
    remove_route,
]
