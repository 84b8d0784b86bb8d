"""The quarantine operator's workers: every change it makes to the cluster, and the one POST.

What is written, and how to recognise it (``docs/operators/quarantine.md`` lists it too):

* an Istio ``AuthorizationPolicy`` ``<name>-quarantine`` (``security.istio.io/v1``), action
  ``DENY``, one empty rule (matches every request), selecting the workload's pods. DENY, not
  an empty ALLOW, because Istio evaluates DENY first: no ALLOW policy the team already has
  can let a request through;
* an immutable ``ConfigMap`` ``<name>-quarantine-evidence`` with the workload as it was and
  the alert;
* the label ``autopilot.dev/quarantined=true`` on the Deployment's own metadata, never on
  its pod template (that would restart the pods and destroy what is running);
* Kubernetes Events on the Deployment (``Quarantined``, ``QuarantineEscalated``,
  ``QuarantineLifted``) through the shared recorder (:mod:`activities.kube.events`), and on
  escalation a JSON POST when a notify URL is set.

Every object carries ``app.kubernetes.io/managed-by: autopilot`` and the annotations
``autopilot.dev/managed-by: quarantine`` and ``autopilot.dev/workflow``. An object of the same
name that lacks them belongs to someone else: it is never replaced or deleted.

Each activity is idempotent, because Temporal may run it more than once: writes compare
before they write, create treats 409 as "already there", delete treats 404 as done. Calls,
marks and 409 retries are :mod:`activities.kube`'s, shared with the canary operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from temporalio import activity

from activities import kube
from activities.errors import non_retryable
from models.kube_events import EventNote
from models.quarantine import (
    EvidenceRecorded,
    PolicyApplied,
    QuarantineStep,
    SecurityNotified,
    evidence_name,
    policy_name,
)
from service.settings import QuarantineSettings

#: Label on a quarantined Deployment (and on the objects we create for it).
QUARANTINED = "autopilot.dev/quarantined"
#: ``autopilot.dev/managed-by: quarantine``, field manager ``autopilot-quarantine``. A refusal
#: (400, 401, 403, 422) fails at once: no retry fixes a policy the API server rejects.
QUARANTINE = kube.Owner("quarantine", labels={QUARANTINED: "true"}, refusals_are_final=True)
#: Annotation on the evidence ConfigMap: which incident it belongs to.
INCIDENT = "autopilot.dev/incident"

#: Istio's security API.
ISTIO_SECURITY_GROUP = "security.istio.io"
ISTIO_SECURITY_VERSION = "v1"
AUTHORIZATION_POLICIES = "authorizationpolicies"

NOTIFY_TIMEOUT_S = 10.0

_MERGE_PATCH = "application/merge-patch+json"

Json = kube.Json


async def _deployment(step: QuarantineStep) -> Json | None:
    return await QUARANTINE.read_or_none(
        kube.apps().read_namespaced_deployment, step.target.name, step.target.namespace
    )


# =============================================================================
# The DENY policy
# =============================================================================


async def _selector(step: QuarantineStep) -> tuple[dict[str, str], str]:
    """The pods to isolate: the spec's selector, else the Deployment's, else the Service's."""
    if step.spec.selector:
        return dict(step.spec.selector), "spec"
    deployment = await _deployment(step)
    if deployment is not None:
        selector = (deployment.get("spec") or {}).get("selector") or {}
        labels = selector.get("matchLabels") or {}
        if labels and not selector.get("matchExpressions"):
            return dict(labels), "deployment"
        # An AuthorizationPolicy selects by labels only: the pod template's labels select
        # exactly the pods this Deployment runs.
        template = (deployment["spec"].get("template") or {}).get("metadata") or {}
        if template.get("labels"):
            return dict(template["labels"]), "deployment"
    service = await QUARANTINE.read_or_none(
        kube.core().read_namespaced_service, step.target.name, step.target.namespace
    )
    if service is not None and (service.get("spec") or {}).get("selector"):
        return dict(service["spec"]["selector"]), "service"
    raise non_retryable(
        f"nothing to isolate: no Deployment or Service {step.target.namespace}/"
        f"{step.target.name} with a selector; set spec.selector to the pods' labels"
    )


def deny_policy(step: QuarantineStep, selector: dict[str, str]) -> Json:
    """The AuthorizationPolicy that denies every request to the selected pods.

    ``rules: [{}]`` is one rule that matches every request; with ``exemptNamespaces`` the
    rule matches every request *not* from those namespaces (a request without a mTLS
    identity has no namespace, so it is denied too).
    """
    rule: Json = {}
    if step.spec.exempt_namespaces:
        rule = {"from": [{"source": {"notNamespaces": list(step.spec.exempt_namespaces)}}]}
    first = step.data.first_alert
    extra = {"autopilot.dev/alert": first.alertname} if first else {}
    return {
        "apiVersion": f"{ISTIO_SECURITY_GROUP}/{ISTIO_SECURITY_VERSION}",
        "kind": "AuthorizationPolicy",
        "metadata": QUARANTINE.metadata(
            policy_name(step.target), step.target.namespace, step.workflow_id, annotations=extra
        ),
        "spec": {"selector": {"matchLabels": selector}, "action": "DENY", "rules": [rule]},
    }


def _policy_api(step: QuarantineStep) -> tuple[str, str, str, str]:
    return (
        ISTIO_SECURITY_GROUP,
        ISTIO_SECURITY_VERSION,
        step.target.namespace,
        AUTHORIZATION_POLICIES,
    )


async def read_policy(step: QuarantineStep) -> Json | None:
    return await QUARANTINE.read_or_none(
        kube.custom().get_namespaced_custom_object, *_policy_api(step), policy_name(step.target)
    )


def _needs_update(live: Json, wanted: Json) -> bool:
    meta, want = live.get("metadata") or {}, wanted["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return (
        live.get("spec") != wanted["spec"]
        or any(labels.get(k) != v for k, v in want["labels"].items())
        or any(annotations.get(k) != v for k, v in want["annotations"].items())
    )


@activity.defn(name="quarantine.apply_deny_policy")
async def apply_deny_policy(step: QuarantineStep) -> PolicyApplied:
    """Create or correct the DENY AuthorizationPolicy; once it is as wanted, write nothing.

    Raises:
        ApplicationError: (non-retryable) nothing to isolate, or a policy of that name
            exists and is not ours.
    """
    selector, selected_by = await _selector(step)
    wanted = deny_policy(step, selector)
    name = wanted["metadata"]["name"]
    api = kube.custom()

    changed = await kube.ensure(
        wanted,
        lambda: read_policy(step),
        lambda body: QUARANTINE.call(
            api.create_namespaced_custom_object,
            *_policy_api(step),
            body,
            field_manager=QUARANTINE.field_manager,
        ),
        QUARANTINE.correction(wanted, _needs_update),
        lambda body: QUARANTINE.call(
            api.replace_namespaced_custom_object,
            *_policy_api(step),
            name,
            body,
            field_manager=QUARANTINE.field_manager,
        ),
    )
    if changed:
        activity.logger.info("DENY policy %s/%s applied", step.target.namespace, name)
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        message = f"isolated: AuthorizationPolicy {name} (DENY) refuses every request to {labels}"
        await record_event(step, EventNote(type="Warning", reason="Quarantined", message=message))
    return PolicyApplied(name=name, selector=selector, selected_by=selected_by, changed=changed)


@activity.defn(name="quarantine.remove_deny_policy")
async def remove_deny_policy(step: QuarantineStep) -> None:
    """Delete our DENY policy; an absent one, or one that is not ours, is left as it is."""
    name = policy_name(step.target)

    async def attempt() -> bool:
        live = await read_policy(step)
        if live is None:
            return False
        if not QUARANTINE.owns(live):
            activity.logger.warning("AuthorizationPolicy %s is not ours; leaving it", name)
            return False
        # Deleted exactly as read: a policy replaced meanwhile is 409, and decided on again.
        return await QUARANTINE.delete_exactly(
            live, kube.custom().delete_namespaced_custom_object, *_policy_api(step), name
        )

    removed, _ = await kube.retry_conflicts(attempt, f"AuthorizationPolicy {name}")
    if removed:
        activity.logger.info("DENY policy %s/%s removed", step.target.namespace, name)
        message = f"released: AuthorizationPolicy {name} removed, traffic flows again"
        await record_event(step, EventNote(reason="QuarantineLifted", message=message))


# =============================================================================
# Evidence
# =============================================================================


def _incident(step: QuarantineStep) -> str:
    """Names one quarantine: the workflow and when it isolated the workload."""
    since = step.data.quarantined_at.isoformat() if step.data.quarantined_at else "unknown"
    return f"{step.workflow_id}@{since}"


def _images(deployment: Json | None) -> list[str]:
    if deployment is None:
        return []
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return [f"{c['name']}={c.get('image', '')}" for c in containers]


def _evidence(step: QuarantineStep, deployment: Json | None) -> Json:
    """The ConfigMap body: workload and alerts as JSON, images as lines."""
    workload: Json | None = None
    if deployment is not None:
        meta = deployment["metadata"]
        workload = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                key: meta[key]
                for key in (
                    "name",
                    "namespace",
                    "uid",
                    "generation",
                    "resourceVersion",
                    "creationTimestamp",
                    "labels",
                    "annotations",
                )
                if key in meta
            },
            "spec": deployment.get("spec"),
            "status": deployment.get("status"),
        }
    alerts = [a.model_dump(mode="json") for a in step.data.alerts]
    captured = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": QUARANTINE.metadata(
            evidence_name(step.target),
            step.target.namespace,
            step.workflow_id,
            annotations={INCIDENT: _incident(step), "autopilot.dev/captured-at": captured},
        ),
        "immutable": True,
        "data": {
            "alerts.json": json.dumps(alerts, indent=2, sort_keys=True),
            "workload.json": json.dumps(workload, indent=2, sort_keys=True),
            "images.txt": "".join(f"{line}\n" for line in _images(deployment)),
            "target.txt": f"{step.target.kind} {step.target.namespace}/{step.target.name}\n",
        },
    }


@activity.defn(name="quarantine.snapshot_evidence")
async def snapshot_evidence(step: QuarantineStep) -> EvidenceRecorded:
    """Write the evidence ConfigMap once per incident; a retry keeps the first snapshot.

    The ConfigMap is immutable. A later incident for the same workload replaces it (the
    earlier one stays in that workflow's history); a ConfigMap of that name that is not
    ours is never touched.
    """
    name = evidence_name(step.target)
    namespace = step.target.namespace
    api = kube.core()

    async def attempt() -> EvidenceRecorded:
        live = await QUARANTINE.read_or_none(api.read_namespaced_config_map, name, namespace)
        if live is not None:
            QUARANTINE.refuse_foreign(live, "refusing to replace it")
            annotations = live["metadata"].get("annotations") or {}
            if annotations.get(INCIDENT) == _incident(step):
                images = (live.get("data") or {}).get("images.txt", "").splitlines()
                workload = (live.get("data") or {}).get("workload.json", "null") != "null"
                return EvidenceRecorded(config_map=name, images=images, workload_found=workload)
            # Immutable: an older incident's evidence is replaced by delete + create.
            await QUARANTINE.delete_exactly(live, api.delete_namespaced_config_map, name, namespace)
        deployment = await _deployment(step)
        body = _evidence(step, deployment)
        await QUARANTINE.call(
            api.create_namespaced_config_map,
            namespace,
            body,
            field_manager=QUARANTINE.field_manager,
        )
        activity.logger.info("evidence written to ConfigMap %s/%s", namespace, name)
        return EvidenceRecorded(
            config_map=name, images=_images(deployment), workload_found=deployment is not None
        )

    recorded, _ = await kube.retry_conflicts(attempt, f"ConfigMap {namespace}/{name}")
    return recorded


# =============================================================================
# The label on the Deployment
# =============================================================================


async def _patch_deployment(step: QuarantineStep, metadata: Json) -> bool:
    """Merge-patch the Deployment's own metadata; False when it does not exist."""
    try:
        await QUARANTINE.call(
            kube.apps().patch_namespaced_deployment,
            step.target.name,
            step.target.namespace,
            {"metadata": metadata},
            field_manager=QUARANTINE.field_manager,
            _content_type=_MERGE_PATCH,
        )
    except Exception as error:
        if kube.is_not_found(error):
            return False
        raise
    return True


@activity.defn(name="quarantine.label_workload")
async def label_workload(step: QuarantineStep) -> None:
    """Label the Deployment ``autopilot.dev/quarantined=true`` (its metadata, not its pods)."""
    # A label only: changing a Deployment's annotations bumps its generation (they are
    # copied to its ReplicaSets), which rollout tools, the canary operator included, watch.
    found = await _patch_deployment(step, {"labels": {QUARANTINED: "true"}})
    if not found:
        activity.logger.info("no Deployment %s to label", step.target.name)


@activity.defn(name="quarantine.unlabel_workload")
async def unlabel_workload(step: QuarantineStep) -> None:
    """Remove the label again; a Deployment that is gone needs nothing."""
    await _patch_deployment(step, {"labels": {QUARANTINED: None}})


# =============================================================================
# Escalation
# =============================================================================


def notification(step: QuarantineStep) -> Json:
    """The JSON body of the escalation POST: enough to act on without opening anything."""
    data = step.data
    return {
        "operator": "quarantine",
        "workflow_id": step.workflow_id,
        "namespace": step.target.namespace,
        "name": step.target.name,
        "state": step.state,
        "reason": data.escalation_reason,
        "isolated": data.policy is not None,
        "isolated_since": data.quarantined_at.isoformat() if data.quarantined_at else None,
        "policy": data.policy,
        "selector": data.selector,
        "evidence": data.evidence,
        "images": data.images,
        "alerts": [a.model_dump(mode="json") for a in data.alerts],
        "problems": data.problems,
    }


async def _post(url: str, body: Json, key: str) -> int:
    headers = {"Idempotency-Key": key, "User-Agent": "autopilot-quarantine"}
    timeout = aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        if response.status in (408, 429) or response.status >= 500:
            raise RuntimeError(f"POST {url} answered {response.status}; will retry")
        if response.status >= 400:
            raise non_retryable(
                f"POST {url} answered {response.status}: {(await response.text())[:200]}"
            )
        return response.status


async def _about(step: QuarantineStep) -> kube.ObjectRef:
    """The Deployment, the object every quarantine Event is about (its ``uid`` if it exists)."""
    deployment = await _deployment(step)
    if deployment is not None:
        return kube.ObjectRef.of({"apiVersion": "apps/v1", "kind": "Deployment", **deployment})
    return kube.ObjectRef("apps/v1", "Deployment", step.target.namespace, step.target.name)


async def record_event(step: QuarantineStep, note: EventNote) -> str | None:
    """An Event on the Deployment through the shared recorder; None when none was written.

    The occurrence is the step key and the reason, so a retried activity adds nothing.
    """
    about = await _about(step)
    occurrence = f"{step.step_key}:{note.reason}"
    return await kube.recorder(QUARANTINE).record(about, note, occurrence, step.workflow_id)


@activity.defn(name="quarantine.notify_security")
async def notify_security(step: QuarantineStep) -> SecurityNotified:
    """Tell security: POST to the notify URL when one is set, and always a Kubernetes Event.

    The POST carries ``Idempotency-Key: <step_key>`` so a receiver can drop a retried
    delivery. 408, 429 and 5xx are retried; another 4xx is final (the URL or receiver is
    wrong, and a retry would not change that).
    """
    data = step.data
    first = data.first_alert
    alert = f"{first.alertname} ({first.severity or 'no severity'})" if first else "no alert"
    isolated = f"isolated by {data.policy}" if data.policy else "NOT isolated"
    message = f"{alert}; {isolated}; {data.escalation_reason or 'escalated'}"
    url = step.spec.notify_url or QuarantineSettings().notify_url or None
    status: int | None = None
    if url:
        status = await _post(url, notification(step), step.step_key)
    note = EventNote(type="Warning", reason="QuarantineEscalated", message=message)
    recorded = await record_event(step, note)
    if recorded is None and not url:
        # The Event is the only word security gets: try again rather than stay silent.
        raise RuntimeError("could not write the QuarantineEscalated Event; will retry")
    return SecurityNotified(posted_to=_redacted(url), status=status, kubernetes_event=recorded)


def _redacted(url: str | None) -> str | None:
    """Scheme and host only: webhook URLs often carry a token in their path or query."""
    if not url:
        return None
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


#: Every quarantine activity, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [
    apply_deny_policy,
    remove_deny_policy,
    snapshot_evidence,
    label_workload,
    unlabel_workload,
    notify_security,
]
