"""The little Kubernetes the CLI does: read a Deployment, and change its image.

``autopilot canary start --image`` makes the new revision real before the canary starts,
exactly as ``kubectl set image`` would, so what the workflow rolls out is what the cluster
runs. The client comes from the project's one factory (``service/kube.py``: a kubeconfig
set in the environment, the pod's ServiceAccount, ``~/.kube/config``), with the running dev
cluster's kubeconfig last. Failures become
:class:`~cli.errors.CliError` with exit code 6 (unreachable) or 4 (no such Deployment).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from cli.errors import CliError, Exit
from devcluster import paths as dev_paths
from devcluster.state import ClusterState
from service import kube

#: What to do when Kubernetes is missing.
KUBE_HINT = (
    "set KUBECONFIG, or run 'autopilot dev up' for a local cluster "
    "(then 'eval \"$(autopilot dev env)\"')"
)

#: Connect and read timeouts of every call, in seconds.
TIMEOUT = (5, 30)
#: How many times ``set_image`` reads and patches when the container changes in between.
SET_IMAGE_ATTEMPTS = 3


class ChangedMeanwhile(CliError):
    """What was read changed before the write landed; reading again may succeed."""


def _dev_kubeconfig() -> Path | None:
    state_dir = dev_paths.default_state_dir()
    try:
        state = ClusterState.load(state_dir / "cluster.json")
    except (OSError, ValueError):
        return None
    process = state.processes.get("kube-apiserver")
    path = state_dir / "kubeconfig"
    return path if process is not None and process.alive() and path.is_file() else None


def api_client() -> client.ApiClient:
    """A client by the project's one precedence (:mod:`service.kube`), the running dev
    cluster last; a :class:`CliError` (exit 6) when there is none."""
    dev = _dev_kubeconfig()
    try:
        return kube.api_client(fallbacks=[dev] if dev is not None else [], retries=1)
    except kube.KubernetesNotConfigured:
        raise CliError("Kubernetes is not configured", Exit.NO_KUBERNETES, hint=KUBE_HINT) from None
    except Exception as error:
        raise CliError(
            f"cannot load the Kubernetes configuration: {error}", Exit.NO_KUBERNETES, hint=KUBE_HINT
        ) from None


def _call(api: client.ApiClient, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as error:
        if error.status == 404:
            raise CliError(f"no {what}", Exit.UNKNOWN_TARGET) from None
        if error.status in (401, 403):
            raise CliError(
                f"Kubernetes refused access to {what}: {error.reason}",
                Exit.NO_KUBERNETES,
                hint="check the credentials in your kubeconfig",
            ) from None
        if error.status == 409 or _guard_failed(error):
            raise ChangedMeanwhile(
                f"{what} changed while it was being updated", hint="run the command again"
            ) from None
        raise CliError(f"Kubernetes refused to change {what}: {_message(error)}") from None
    except (HTTPError, OSError) as error:
        host = api.configuration.host
        raise CliError(
            f"cannot reach Kubernetes at {host}: {type(error).__name__}",
            Exit.NO_KUBERNETES,
            hint=KUBE_HINT,
        ) from None


def _guard_failed(error: ApiException) -> bool:
    """Whether a JSON patch's ``test`` operation failed.

    The API server answers that with 422 Invalid and no field causes, where a genuinely
    invalid value (an empty image, say) names its field.
    """
    if error.status != 422:
        return False
    try:
        body = json.loads(error.body or "")
    except ValueError:
        return False
    return isinstance(body, dict) and not (body.get("details") or {}).get("causes")


def _message(error: ApiException) -> str:
    """The API server's own message, else the HTTP status."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return f"{error.status} {error.reason}"


def read_deployment(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The Deployment as JSON (as the API server sent it)."""
    apps = client.AppsV1Api(api)
    found = _call(
        api, f"Deployment {namespace}/{name}", apps.read_namespaced_deployment, name, namespace
    )
    result: dict[str, Any] = api.sanitize_for_serialization(found)
    return result


def new_revision_patch(
    container: str, image: str, annotations: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """A strategic merge patch giving ``container`` a new image (and pod-template annotations;
    None removes one), as ``kubectl set image`` sends it.

    Unguarded on purpose, for callers that mean "whatever is there now": status updates
    landing between a read and this write cannot make it fail, as a read-then-replace would.
    """
    template = {
        "metadata": {"annotations": dict(annotations or {})},
        "spec": {"containers": [{"name": container, "image": image}]},
    }
    return {"spec": {"template": template}}


def set_image(
    api: client.ApiClient, namespace: str, name: str, image: str, container: str | None = None
) -> dict[str, Any]:
    """Set one container's image (the first, unless ``container``); the updated Deployment.

    The JSON patch is guarded by that container's name and image as just read, not by the
    Deployment's ``resourceVersion``: controllers bump that with every status update (the
    deployment controller does so while pods start), and a guard on it failed at random. If
    the container itself changed in between, the Deployment is read again, a few times.
    """
    for _ in range(SET_IMAGE_ATTEMPTS - 1):
        with contextlib.suppress(ChangedMeanwhile):
            return _set_image_once(api, namespace, name, image, container)
    return _set_image_once(api, namespace, name, image, container)


def _set_image_once(
    api: client.ApiClient, namespace: str, name: str, image: str, container: str | None
) -> dict[str, Any]:
    deployment = read_deployment(api, namespace, name)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    if container is None:
        index = 0
    elif container in names:
        index = names.index(container)
    else:
        raise CliError(
            f"Deployment {namespace}/{name} has no container {container!r}",
            Exit.INVALID,
            hint=f"its containers: {', '.join(names)}",
        )
    if containers[index].get("image") == image:
        return deployment
    path = f"/spec/template/spec/containers/{index}"
    patch = [
        {"op": "test", "path": f"{path}/name", "value": names[index]},
        {"op": "test", "path": f"{path}/image", "value": containers[index].get("image")},
        {"op": "replace", "path": f"{path}/image", "value": image},
    ]
    apps = client.AppsV1Api(api)
    updated = _call(
        api,
        f"Deployment {namespace}/{name}",
        apps.patch_namespaced_deployment,
        name,
        namespace,
        patch,
    )
    result: dict[str, Any] = api.sanitize_for_serialization(updated)
    return result
