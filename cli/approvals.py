"""Human commands as ``Approval`` objects: the API server says who gives them.

``autopilot approve`` (and every other command) creates an ``Approval`` in the target's
namespace when the cluster serves the resource: RBAC decides whether you may, the admission
policy records who you are, and the approvals watcher hands it to the workflow and writes the
outcome into the object's status, which this module waits for. ``--via temporal`` (or
``--as``, which only the direct path can honour) sends the Temporal update straight, for
local use; the record then says ``via temporal``, its name unchecked.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cli.errors import CliError, Exit
from models.approvals import (
    APPLIED,
    APPROVAL_GROUP,
    APPROVAL_KIND,
    APPROVAL_PLURAL,
    APPROVAL_VERSION,
    EXPIRED,
    QUEUED,
    REFUSED,
    SUPERSEDED,
    update_id_for,
)
from models.operator import SUPERSEDED as SUPERSEDED_OUTCOME
from models.operator import CommandReceipt

#: How long an Approval may sit unseen by any watcher before the CLI says so (``--via
#: kubernetes``), or takes it back and sends the command straight to Temporal (``auto``).
PICKUP_TIMEOUT_S = 30.0
AUTO_PICKUP_TIMEOUT_S = 5.0
#: Tries of the create when the API server answers 503 or 429 (0.5 s, 1 s, 2 s, 4 s apart).
CREATE_ATTEMPTS = 5


class NotPickedUp(Exception):
    """No watcher handled the Approval in time, and it was taken back (``auto``).

    ``update_id`` is the one the watcher would have used, so that sending the command
    directly under it can never give it twice, even if a watcher took it up meanwhile.
    """

    def __init__(self, update_id: str) -> None:
        super().__init__(update_id)
        self.update_id = update_id


#: Pause between two reads of the Approval's status.
POLL_S = 0.25

Via = Literal["auto", "kubernetes", "temporal"]


def serves_approvals(api: client.ApiClient) -> bool:
    """Whether the API server serves ``approvals.autopilot.dev`` (the CRD is installed)."""
    try:
        resources = client.CustomObjectsApi(api).get_api_resources(APPROVAL_GROUP, APPROVAL_VERSION)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return any(r.name == APPROVAL_PLURAL for r in resources.resources or [])


def kubernetes_api(via: Via) -> client.ApiClient | None:
    """A client to create the Approval with, or ``None`` to send the update to Temporal.

    ``auto``: Kubernetes when it is configured, reachable and serves Approvals; Temporal
    otherwise. ``kubernetes``: the same, but anything missing is an error (exit 6).
    """
    from cli import kube

    if via == "temporal":
        return None
    try:
        api = kube.api_client()
    except CliError:
        if via == "auto":
            return None
        raise
    try:
        served = serves_approvals(api)
    except Exception as error:  # unreachable, refused: the user's cluster, not our bug
        api.close()
        if via == "auto":
            return None
        raise CliError(
            f"cannot ask the API server for Approvals: {error}", Exit.NO_KUBERNETES
        ) from None
    if served:
        return api
    api.close()
    if via == "auto":
        return None
    raise CliError(
        "the cluster does not serve Approvals (approvals.autopilot.dev)",
        Exit.NO_KUBERNETES,
        hint="install deploy/crds/approval.yaml, or use --via temporal",
    )


def give(
    api: client.ApiClient,
    *,
    operator: str,
    namespace: str,
    target: str,
    command: str,
    reason: str | None,
    wait: float,
    take_back: bool = False,
) -> tuple[str, CommandReceipt | None]:
    """Create the Approval and wait up to ``wait`` s for its outcome.

    Returns:
        The Approval's name, and the receipt (``None`` while it is still queued).

    ``take_back``: if no watcher has handled it within :data:`AUTO_PICKUP_TIMEOUT_S`, delete
    it and raise :class:`NotPickedUp` (the ``auto`` path then sends the command directly).

    Raises:
        CliError: refused by RBAC or the workflow (1), no watcher picked it up (3).
        NotPickedUp: with ``take_back``, nobody handled it and it is deleted.
    """
    custom = client.CustomObjectsApi(api)
    body: dict[str, Any] = {
        "apiVersion": f"{APPROVAL_GROUP}/{APPROVAL_VERSION}",
        "kind": APPROVAL_KIND,
        "metadata": {"generateName": f"{target[:40]}-{command}-"},
        "spec": {"operator": operator, "target": target, "command": command},
    }
    if reason:
        body["spec"]["reason"] = reason
    created: Any = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            created = custom.create_namespaced_custom_object(
                APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, body
            )
            break
        except ApiException as error:
            # 503/429: the API server asks to come back (a just-installed admission policy
            # answers 503 until it is ready); anything else is its verdict.
            if error.status not in (429, 503) or attempt == CREATE_ATTEMPTS - 1:
                raise _refused_by_api_server(error, namespace, command) from None
            time.sleep(0.5 * 2**attempt)
    name = created["metadata"]["name"]
    begun = time.monotonic()
    while True:
        current: Any = custom.get_namespaced_custom_object(
            APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, name
        )
        status = current.get("status") or {}
        phase = status.get("phase")
        if phase in (APPLIED, SUPERSEDED):
            return name, _receipt(current)
        if phase in (REFUSED, EXPIRED):
            raise CliError(f"{command} {phase.lower()}: {status.get('message', '')}")
        waited = time.monotonic() - begun
        if phase == QUEUED and waited >= wait:
            return name, None
        if phase is None and take_back and waited >= AUTO_PICKUP_TIMEOUT_S:
            uid = created["metadata"]["uid"]
            try:
                custom.delete_namespaced_custom_object(
                    APPROVAL_GROUP, APPROVAL_VERSION, namespace, APPROVAL_PLURAL, name
                )
            except ApiException as error:
                if error.status != 404:  # may not delete: leave it to a watcher, say so
                    take_back = False
                    continue
            raise NotPickedUp(update_id_for(uid))
        if phase is None and waited >= PICKUP_TIMEOUT_S:
            raise CliError(
                f"Approval {namespace}/{name} was created, but no watcher handled it within "
                f"{PICKUP_TIMEOUT_S:g}s; one will when it runs",
                Exit.WAITING,
                hint="are the watchers running ('autopilot worker' runs them)? To take it "
                f"back: kubectl delete approval -n {namespace} {name}",
            )
        time.sleep(POLL_S)


def _receipt(approval: dict[str, Any]) -> CommandReceipt:
    """The receipt a handled Approval stands for (as the Temporal update would answer)."""
    spec, status = approval["spec"], approval["status"]
    applied = status["phase"] == APPLIED
    created = approval["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    return CommandReceipt(
        command=spec["command"],
        by=spec.get("requestedBy") or "?",
        accepted_at=datetime.fromisoformat(created),
        state=status.get("state") or "?",
        now=status.get("now") or status.get("state") or "?",
        applied=applied,
        outcome="applied" if applied else SUPERSEDED_OUTCOME,
        detail=None if applied else status.get("message"),
    )


def _refused_by_api_server(error: ApiException, namespace: str, command: str) -> CliError:
    """RBAC's or a policy's refusal, as the API server said it."""
    if error.status == 403:
        return CliError(
            f"{command} refused by the API server: you may not create Approvals in "
            f"namespace {namespace}",
            hint="ask for the autopilot-approver role in that namespace (a RoleBinding)",
        )
    return CliError(
        f"{command}: the API server refused the Approval: {error.status} {error.reason}"
    )
