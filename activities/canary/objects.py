"""What the canary operator writes on the objects it manages, named once.

Documented in ``docs/operators/canary.md``, so GitOps tools can be told to leave it alone.
The marks every operator shares (``autopilot.dev/managed-by``...) are
:mod:`activities.kube`'s; the canary adds its revision bookkeeping and an Argo CD hint.
"""

from __future__ import annotations

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

#: Istio networking API used for VirtualServices and DestinationRules.
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1"
