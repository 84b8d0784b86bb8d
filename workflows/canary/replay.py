"""What the canary machine keeps only so that rollouts recorded by older versions replay.

A running rollout is replayed by every new worker; a rule it took must still be there,
in the same order, or the replay fails. Each shim says which change it outlived and what
to do to remove it (``workflow.deprecate_patch`` first, then delete).
"""

from temporalio import workflow

from models.canary import CanaryData, CanarySpec, Initialized
from workflows.canary import effects, guards
from workflows.canary.guards import C
from workflows.engine import Operator

#: Temporal patch: rollouts initialized before ``Queued`` existed replay without it.
QUEUED_PATCH = "canary-queued"


def queues_for_permits(ctx: C) -> bool:
    """Initialized: go through ``Queued`` (a history recorded before it existed does not)."""
    return not workflow.in_workflow() or workflow.patched(QUEUED_PATCH)


def initialized_before_the_cap(canary: Operator[CanarySpec, CanaryData]) -> None:
    """The rules ``Queued`` replaced, for rollouts initialized before the cap existed.

    Declared right after the ``Queued`` rule, whose guard is false only in such a replay.
    """
    canary.on(
        "Initializing",
        Initialized,
        go="Promoting",
        when=guards.skip_analysis,
        do=effects.initialized,
    )
    canary.on(
        "Initializing", Initialized, go="Waiting", when=guards.start_gated, do=effects.initialized
    )
    canary.on("Initializing", Initialized, go="Starting", do=effects.initialized)
