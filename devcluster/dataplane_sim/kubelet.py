"""The simulated kubelet and deployment controller: what a Deployment's status should say.

Why: the dev cluster runs only ``kube-apiserver`` and etcd. Without the controller manager
and kubelets nobody writes ``status`` on Deployments, so anything that waits for a rollout
(``kubectl rollout status``, our own watchers) would wait forever. This module computes the
status the real deployment controller would write if pods started after a delay: the same
fields, the same condition types, reasons and messages. It creates no ReplicaSets or Pods.

Time is the simulator's clock (seconds of simulated time), so unit tests and the simulator's
``tick()`` decide when a rollout completes, not the wall clock. Timestamps inside conditions
are wall-clock, as on any API object.

The function is pure and idempotent: given a Deployment whose status already says what it
would write, :func:`status_differs` is false and no write happens, so re-applying the same
status (or restarting the simulator) causes no churn.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

JsonObject = Mapping[str, Any]

#: Default of ``spec.progressDeadlineSeconds``.
DEFAULT_PROGRESS_DEADLINE_SECONDS: Final = 600

_COUNT_FIELDS: Final = (
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)
_RS_NAME = re.compile(r'ReplicaSet "([^"]+)"')


@dataclass(frozen=True)
class Rollout:
    """Where the simulated rollout of one Deployment generation stands.

    Attributes:
        generation: ``metadata.generation`` being rolled out.
        first_seen: Simulated time at which this generation was first seen.
    """

    generation: int
    first_seen: float


def pod_template_hash(deployment: JsonObject) -> str:
    """A short, stable hash of the pod template, standing in for ``pod-template-hash``."""
    template = (deployment.get("spec") or {}).get("template") or {}
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    # The real hash uses a "safe" alphabet without vowels; any stable 10 chars will do.
    return digest[:10]


def replica_set_name(deployment: JsonObject) -> str:
    """Name of the (simulated) ReplicaSet of the current pod template."""
    name = (deployment.get("metadata") or {}).get("name", "")
    return f"{name}-{pod_template_hash(deployment)}"


def _rolled_out_replica_set(status: JsonObject) -> str | None:
    """The ReplicaSet whose rollout completed, as named by the Progressing condition."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing":
            found = _RS_NAME.search(str(condition.get("message", "")))
            complete = condition.get("reason") == "NewReplicaSetAvailable"
            return found.group(1) if found and complete else None
    return None


def max_unavailable(deployment: JsonObject, desired: int) -> int:
    """``maxUnavailable`` resolved against ``desired`` (25% by default, rounded down)."""
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or desired == 0:
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        resolved = math.floor(desired * float(value[:-1]) / 100)
    else:
        resolved = int(value)
    return max(0, min(resolved, desired))


def _condition(
    kind: str, status: str, reason: str, message: str, previous: JsonObject | None, now: str
) -> dict[str, str]:
    """Build a condition, keeping timestamps where the real controller would keep them."""
    previous = previous or {}
    same_status = previous.get("status") == status
    same_content = same_status and (
        previous.get("reason"),
        previous.get("message"),
    ) == (reason, message)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": previous.get("lastUpdateTime", now) if same_content else now,
        "lastTransitionTime": previous.get("lastTransitionTime", now) if same_status else now,
    }


def desired_status(
    deployment: JsonObject,
    rollout: Rollout,
    now: float,
    ready_delay: float | None,
    wall_time: str,
) -> dict[str, Any]:
    """Compute the status the deployment controller would write at simulated time ``now``.

    Args:
        deployment: The Deployment as a JSON mapping, with its current status.
        rollout: When its current generation was first seen.
        now: Simulated time in seconds.
        ready_delay: Seconds until the new pods are ready, ``None`` for never.
        wall_time: RFC 3339 timestamp for changed conditions.

    Returns:
        A complete ``status`` mapping.
    """
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    rs_name = replica_set_name(deployment)
    # Same template as the last completed rollout: only ``replicas`` changed.
    same_template = _rolled_out_replica_set(status) == rs_name
    previously_ready = int(status.get("readyReplicas") or 0)
    already_done = (
        same_template
        and status.get("observedGeneration") == rollout.generation
        and all(int(status.get(f) or 0) == desired for f in _COUNT_FIELDS[:4])
    )
    elapsed = now - rollout.first_seen
    done = (
        desired == 0
        or already_done
        or (same_template and previously_ready >= desired)  # scaling down is immediate
        or (ready_delay is not None and elapsed >= ready_delay)
    )
    # ``replicas`` counts every pod, ``updatedReplicas`` those of the new template, and
    # ``readyReplicas`` the ready ones of any template (what ``kubectl rollout status`` reads).
    if done:
        pods = ready = desired
    elif same_template:  # scaling up: the existing pods keep serving, new ones start
        pods, ready = desired, min(previously_ready, desired)
    else:  # a new template: all new pods start, old ones serve until they are ready
        recreate = spec.get("strategy", {}).get("type") == "Recreate"
        old_serving = 0 if recreate else min(previously_ready, desired)
        pods, ready = desired + old_serving, old_serving

    previous = {c.get("type"): c for c in status.get("conditions") or []}
    minimum = desired - max_unavailable(deployment, desired)
    available = (
        _condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            previous.get("Available"),
            wall_time,
        )
        if ready >= minimum
        else _condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            previous.get("Available"),
            wall_time,
        )
    )
    deadline = float(spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS))
    if done:
        progressing = ("True", "NewReplicaSetAvailable", "has successfully progressed.")
    elif elapsed > deadline:
        progressing = ("False", "ProgressDeadlineExceeded", "has timed out progressing.")
    else:
        progressing = ("True", "ReplicaSetUpdated", "is progressing.")
    return {
        "observedGeneration": rollout.generation,
        "replicas": pods,
        "updatedReplicas": desired,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(desired - ready, 0),
        "conditions": [
            available,
            _condition(
                "Progressing",
                progressing[0],
                progressing[1],
                f'ReplicaSet "{rs_name}" {progressing[2]}',
                previous.get("Progressing"),
                wall_time,
            ),
        ],
    }


def _comparable(status: JsonObject) -> tuple[Any, ...]:
    """Status without timestamps; absent counts are zero (the API server drops zeros)."""
    counts = tuple(int(status.get(f) or 0) for f in _COUNT_FIELDS)
    conditions = sorted(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
        for c in status.get("conditions") or []
    )
    return (status.get("observedGeneration"), counts, conditions)


def status_differs(current: JsonObject | None, desired: JsonObject) -> bool:
    """Whether writing ``desired`` would change anything a reader cares about."""
    return _comparable(current or {}) != _comparable(desired)


class RolloutTracker:
    """Remembers, per Deployment UID, when its current generation was first seen."""

    def __init__(self) -> None:
        self._rollouts: dict[str, Rollout] = {}

    def observe(self, deployment: JsonObject, now: float) -> Rollout:
        """Return the rollout of the Deployment's current generation, starting one if new."""
        metadata = deployment.get("metadata") or {}
        uid = str(metadata.get("uid") or metadata.get("name"))
        generation = int(metadata.get("generation") or 1)
        rollout = self._rollouts.get(uid)
        if rollout is None or rollout.generation != generation:
            rollout = Rollout(generation=generation, first_seen=now)
            self._rollouts[uid] = rollout
        return rollout

    def retain(self, uids: set[str]) -> None:
        """Forget Deployments that no longer exist."""
        self._rollouts = {uid: r for uid, r in self._rollouts.items() if uid in uids}
