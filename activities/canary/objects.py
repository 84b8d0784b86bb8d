"""What the canary operator writes on the objects it manages, named once.

Documented in ``docs/operators/canary.md``, so GitOps tools can be told to leave it alone.
The marks every operator shares (``autopilot.dev/managed-by``...) are
:mod:`activities.kube`'s; the canary adds its revision bookkeeping and an Argo CD hint.
"""

from __future__ import annotations

from typing import Any

from activities.kube import Owner

#: Tells Argo CD not to report generated objects as out of sync or prune them.
ARGOCD_COMPARE = "argocd.argoproj.io/compare-options"

#: The canary operator: ``autopilot.dev/managed-by: canary``, field manager
#: ``autopilot-canary``. Refusals are retried like any error: a rollback must keep trying.
CANARY = Owner("canary", annotations={ARGOCD_COMPARE: "IgnoreExtraneous"})

#: Annotation on ``<name>-primary``: the revision (pod template hash) it runs.
REVISION = "autopilot.dev/revision"
#: Annotations on ``<name>-primary``: a revision that failed or was aborted, and why.
REJECTED_REVISION = "autopilot.dev/rejected-revision"
REJECTED_REASON = "autopilot.dev/rejected-reason"

#: ``metadata.ownerReferences`` of a generated object.
OwnerReferences = list[dict[str, Any]]


def owned_by(target: dict[str, Any]) -> OwnerReferences:
    """ownerReferences that make the target Deployment own what the canary generates for it.

    Why: the generated objects (``<name>-primary``, the Services, the routes) live and die
    with the user's Deployment; when it is deleted the garbage collector removes them, as
    Flagger's owner references do. Neither ``controller`` nor ``blockOwnerDeletion`` is set:
    nothing waits for them, and no extra permission is needed. An object read back without a
    ``uid`` (never from a real API server) gets none.
    """
    meta = target.get("metadata") or {}
    if not meta.get("uid"):
        return []
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"]}
    ]


#: Istio networking API used for VirtualServices and DestinationRules.
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1"
