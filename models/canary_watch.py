"""What the Kubernetes side of a canary looks like: the ``Canary`` object's status and marks.

Why a module apart from :mod:`models.canary`: the spec, data and events there are the state
machine's contract; this is the contract between the watchers, the ``Canary`` custom resource
and the people who read it with ``kubectl``. The CRD's status schema is generated from
:class:`CanaryStatus` (``deploy/generate_crds.py``), the watchers write it, and the CLI may read
it, so all three agree on one shape.

Two kinds of fields live in the status:

* **the mirror** of the workflow (phase, state, weight, failed checks, last transition,
  message): what ``kubectl get canaries`` shows, refreshed from Temporal;
* **the watcher's bookkeeping** (``observedRevision``, ``targetUid``, ``observedGeneration``):
  what the Kubernetes watcher has already delivered, kept on the object itself so that a
  restarted or second watcher replica does not deliver it again.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: API group, version and resource of the ``Canary`` custom resource.
CANARY_GROUP = "autopilot.dev"
CANARY_VERSION = "v1alpha1"
CANARY_PLURAL = "canaries"
CANARY_SINGULAR = "canary"
CANARY_SHORT_NAMES = ("apc",)

#: Finalizer the Kubernetes watcher puts on every ``Canary``: deleting the object waits until
#: the watcher has told the workflow (``TargetDeleted``), even if the watcher was down.
CANARY_FINALIZER = "autopilot.dev/abort-rollout"

#: Canary annotation: ``"true"`` asks the Prometheus watcher to push ``MetricSample`` events
#: between analyses (opt-in: the workflow's own ``canary.analyse`` activity always runs).
METRIC_SAMPLES_ANNOTATION = "autopilot.dev/metric-samples"

#: Search attribute of every canary workflow: a short hash of its data, new whenever the
#: rollout's status changes (an analysis, a failed hook, a message) even in the same state,
#: so that the status mirror, which reads one visibility listing per interval, knows which
#: rollouts to ask for their status. See ``workflows/canary.py`` (``data_hash``).
DATA_HASH_ATTRIBUTE = "CanaryDataHash"

#: ``status.phase`` when the spec does not load; the workflow is not started.
INVALID_PHASE = "Invalid"
#: ``status.phase`` before the first workflow status is known.
PENDING_PHASE = "Pending"


class CanaryStatus(BaseModel):
    """The ``status`` subresource of a ``Canary`` (camelCase on the wire)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    phase: str | None = Field(
        default=None,
        description="Flagger's phase of the workflow's state (Progressing, Succeeded, ...)",
    )
    state: str | None = Field(default=None, description="the state machine's state")
    canary_weight: int | None = Field(
        default=None, ge=0, le=100, description="percent of traffic on the canary"
    )
    failed_checks: int | None = Field(default=None, ge=0, description="failed checks so far")
    iterations: int | None = Field(default=None, ge=0, description="analyses of this revision")
    last_transition_time: datetime | None = Field(
        default=None, description="when the workflow last changed state"
    )
    workflow_id: str | None = Field(default=None, description="canary/<namespace>/<deployment>")
    run_id: str | None = Field(default=None, description="the workflow run mirrored here")
    message: str | None = Field(default=None, description="the workflow's last decision")
    observed_generation: int | None = Field(
        default=None, description="the Canary generation the watcher last handled"
    )
    observed_revision: str | None = Field(
        default=None, description="the pod-template revision last delivered to the workflow"
    )
    target_uid: str | None = Field(
        default=None, description="uid of the Deployment that revision came from"
    )
    suspended: bool | None = Field(
        default=None,
        description="the spec.suspend the watcher last applied to the workflow (pause, resume)",
    )


#: States in which the canary machine acts on a ``MetricSample`` (see
#: ``workflows/canary/machine.py``): the Prometheus watcher samples only rollouts in these states.
METRIC_SAMPLE_STATES = ("Progressing", "AwaitingStep", "AwaitingPromotion")
