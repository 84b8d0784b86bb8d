"""The canary machine: its states, then its transitions grouped by state, then the workflow.

Read with ``workers.py`` (what each state runs), ``guards.py`` and ``effects.py`` (the pure
functions named here) and ``gates.py`` (the three gates). Transitions are tried in the
order written; the few kept only so that recorded histories replay are in ``replay.py``.
"""

# No `from __future__ import annotations`: Temporal compares the run and init signatures.
from temporalio import workflow

from models.canary import (
    AnalysisResult,
    CanaryData,
    CanarySpec,
    Finalised,
    HooksRan,
    Initialized,
    MetricSample,
    NewRevision,
    Promoted,
    RolledBack,
    Started,
    TargetDeleted,
    WeightApplied,
)
from models.canary_git import RollbackRecorded
from models.operator import OperatorInput, OperatorStatus
from models.rollout_slots import QueueJoined, SlotGranted
from models.senses import Dedicated, Webhook
from workflows.canary import alerts, effects, git, guards, notes, replay, workers
from workflows.canary.details import SEARCH_ATTRIBUTES, details
from workflows.canary.gates import GATES
from workflows.engine import ANY, ActivityFailed, Command, Operator, OperatorWorkflow, Timeout
from workflows.engine.versioning import pinned
from workflows.registry import register

canary: Operator[CanarySpec, CanaryData] = Operator(
    "canary",
    spec=CanarySpec,
    data=CanaryData,
    initial="Initializing",
    events=[NewRevision, TargetDeleted, MetricSample],
    senses=[
        # A Canary object and its Deployment: new revisions, and the end of either.
        Dedicated("canary-resources", sends=(NewRevision, TargetDeleted)),
        # Its metric templates between analyses, for Canaries that opt in.
        Dedicated("canary-metric-samples", sends=(MetricSample,)),
        # A pipeline may announce a revision itself (the canary reads the live template).
        Webhook(sends=(NewRevision,)),
    ],
    search_attributes=SEARCH_ATTRIBUTES,
    details=details,
    announce=notes.announce,
    recorder=notes.record_event,
    alerts=alerts.alerts,
    alerter=alerts.send_alert,
    description=(
        "Progressive delivery on Istio, at Flagger's level: shifts traffic from the stable "
        "'-primary' Deployment to the user's Deployment step by step, checks Prometheus "
        "metrics and webhooks every interval, promotes or rolls back, and waits at manual "
        "gates for `autopilot approve`. One durable workflow per Deployment."
    ),
)

# -- states (each with the Flagger phase its users know: webhooks and the Canary status) --

canary.state(
    "Initializing",
    phase="Initializing",
    run=[workers.initialize],
    doc="create -primary, Services, DestinationRules, VirtualService; route 100/0",
)
canary.state(
    "Queued",
    phase="Waiting",
    run=[workers.request_slot],
    waits_for="a permit of the concurrency cap (SlotGranted, from its rollout-slots workflow)",
    doc="waits for a permit of the concurrency cap (per namespace, then global); none: passes",
)
canary.state(
    "Waiting",
    phase="Waiting",
    settled=True,
    run=[workers.confirm_rollout],
    after=guards.interval,
    then="Waiting",
    doc="start gate: confirm-rollout hooks (polled every interval) and/or approval",
)
canary.state(
    "Starting",
    phase="Progressing",
    run=[workers.start],
    after=guards.interval,
    then="Starting",
    doc="canary scaled up; waits until ready, then pre-rollout hooks",
)
canary.state(
    "Progressing",
    phase="Progressing",
    run=[workers.set_weight, workers.notify],
    after=guards.interval,
    then="Analysing",
    doc="the step's weight is on the VirtualService; one interval of traffic",
)
canary.state(
    "Analysing",
    phase="Progressing",
    run=[workers.analyse],
    doc="rollout and rollback hooks, metric checks",
)
canary.state(
    "AwaitingStep",
    phase="Waiting",
    settled=True,
    run=[workers.confirm_step],
    after=guards.interval,
    then="Analysing",
    doc="step gate: confirm-traffic-increase hooks and/or approval; analysis continues",
)
canary.state(
    "AwaitingPromotion",
    phase="WaitingPromotion",
    settled=True,
    run=[workers.confirm_promotion],
    after=guards.interval,
    then="Analysing",
    doc="promotion gate: confirm-promotion hooks and/or approval; analysis continues",
)
canary.state(
    "Promoting",
    phase="Promoting",
    run=[workers.set_weight, workers.promote, workers.notify],
    after=guards.interval,
    doc="template copied to -primary; with stepWeightPromotion, traffic moves back in steps",
)
canary.state(
    "Finalising",
    phase="Finalising",
    run=[workers.finalise],
    after=guards.interval,
    then="Finalising",
    doc="route 100/0 to the promoted primary, scale the canary to zero",
)
canary.state(
    "Succeeded",
    phase="Succeeded",
    final=True,
    run=[workers.post_rollout, workers.notify],
    doc="promoted",
)
canary.state(
    "RollingBack",
    phase="Failed",
    run=[workers.rollback],
    after=guards.interval,
    then="RollingBack",
    doc="route 100/0 at once, scale the canary down, mark the revision rejected",
)
canary.state(
    "Failed",
    phase="Failed",
    settled=True,
    failed=True,
    # After a rollback, git is told too (workflows/canary/git.py, behind a patch).
    run=[workers.post_rollout, workers.notify, git.record_rollback],
    doc="rolled back; waits for `retry`, `promote` or a new revision",
)
canary.state(
    "Aborted",
    phase="Failed",
    final=True,
    failed=True,
    run=[workers.rollback, workers.post_rollout, workers.notify],
    doc="aborted by a human or because the target was deleted; traffic back on the primary",
)

# -- anywhere -----------------------------------------------------------------

canary.on("Failed", RollbackRecorded, go=None, do=git.rollback_recorded)

canary.on(ANY, NewRevision, go="Initializing", when=guards.is_new_revision, do=effects.restart)
canary.on(ANY, TargetDeleted, go="Aborted", do=effects.target_gone)
canary.on(ANY, Command("abort"), go="Aborted", do=effects.abort)

PROMOTABLE = ["Waiting", "Starting", "Progressing", "Analysing", "AwaitingStep"]
canary.on(
    [*PROMOTABLE, "AwaitingPromotion", "Failed"],
    Command("promote"),
    go="Promoting",
    do=effects.start_promotion,
)

# -- Initializing -------------------------------------------------------------

canary.on(
    "Initializing", Initialized, go="Failed", when=guards.rejected, do=effects.refuse_rejected
)
canary.on(
    "Initializing",
    Initialized,
    go="Succeeded",
    when=guards.nothing_to_roll_out,
    do=effects.nothing_to_do,
)
canary.on(
    "Initializing", Initialized, go="Queued", when=replay.queues_for_permits, do=effects.initialized
)
replay.initialized_before_the_cap(canary)
canary.on("Initializing", ActivityFailed, go="Failed", do=effects.worker_failed)

# -- Queued -------------------------------------------------------------------

canary.on(
    "Queued",
    QueueJoined,
    go="Promoting",
    when=guards.holds_every_slot_and_skip,
    do=effects.dequeued,
)
canary.on(
    "Queued", QueueJoined, go="Waiting", when=guards.holds_every_slot_and_gated, do=effects.dequeued
)
canary.on("Queued", QueueJoined, go="Starting", when=guards.holds_every_slot, do=effects.dequeued)
canary.on("Queued", QueueJoined, go=None, do=effects.queued)
canary.on("Queued", SlotGranted, go="Queued", do=effects.slot_granted)
canary.on("Queued", ActivityFailed, go="Failed", do=effects.worker_failed)

# -- the gates: Waiting, AwaitingStep, AwaitingPromotion ----------------------

GATE_STATES = list(GATES)
approve = Command("approve")  # opens the gate the rollout waits at

canary.on(
    GATE_STATES,
    HooksRan,
    go="RollingBack",
    when=guards.rollback_asked,
    do=effects.rollback_hook_fired,
)
canary.on(
    "Waiting", HooksRan, go="Starting", when=guards.hooks_open_the_gate, do=effects.open_start
)
canary.on(
    "AwaitingStep", HooksRan, go="Progressing", when=guards.hooks_open_the_gate, do=effects.advance
)
canary.on(
    "AwaitingPromotion",
    HooksRan,
    go="Promoting",
    when=guards.hooks_open_the_gate,
    do=effects.start_promotion,
)
canary.on(GATE_STATES, HooksRan, go=None, do=effects.record_hooks)

canary.on("Waiting", approve, go="Starting", when=guards.confirmed, do=effects.approve_and_start)
canary.on(
    "AwaitingStep", approve, go="Progressing", when=guards.confirmed, do=effects.approve_and_advance
)
canary.on(
    "AwaitingPromotion",
    approve,
    go="Promoting",
    when=guards.confirmed,
    do=effects.approve_and_promote,
)
canary.on(GATE_STATES, approve, go=None, do=effects.approve_gate)
canary.on("Analysing", approve, go=None, when=guards.at_a_gate, do=effects.approve_gate_ahead)

canary.on("Waiting", ActivityFailed, go="Failed", do=effects.worker_failed)

# -- Starting -----------------------------------------------------------------

canary.on(
    "Starting",
    Started,
    go="Progressing",
    when=guards.ready_and_hooks_passed,
    do=effects.begin_steps,
)
canary.on(
    "Starting",
    Started,
    go="RollingBack",
    when=guards.hooks_failed_at_threshold,
    do=effects.pre_rollout_failed,
)
canary.on("Starting", Started, go=None, when=guards.ready, do=effects.pre_rollout_failed)
canary.on(
    "Starting",
    Started,
    go="RollingBack",
    when=guards.not_ready_past_deadline,
    do=effects.not_ready_in_time,
)
canary.on("Starting", Started, go=None, do=effects.note_not_ready)

# -- Progressing ⇄ Analysing --------------------------------------------------

canary.on(
    "Progressing",
    WeightApplied,
    go="RollingBack",
    when=guards.weight_held_past_deadline,
    do=effects.not_ready_in_time,
)
canary.on("Progressing", WeightApplied, go=None, when=guards.weight_held, do=effects.hold_weight)
canary.on(["Progressing", "Promoting"], WeightApplied, go=None, do=effects.record_weight)

canary.on(
    "Analysing",
    AnalysisResult,
    go="RollingBack",
    when=guards.rollback_asked,
    do=effects.rollback_hook_fired,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="RollingBack",
    when=guards.fails_at_threshold,
    do=effects.count_failure,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="Progressing",
    when=guards.counts_as_failure,
    do=effects.count_failure,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="Progressing",
    when=guards.no_data_held,
    do=effects.hold_for_data,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="Progressing",
    when=guards.last_weight_was_held,
    do=effects.record_pass,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="AwaitingPromotion",
    when=guards.passed_last_step_gated,
    do=effects.record_pass,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="Promoting",
    when=guards.at_last_step,
    do=effects.start_promotion,
)
canary.on(
    "Analysing",
    AnalysisResult,
    go="AwaitingStep",
    when=guards.passed_step_gated,
    do=effects.record_pass,
)
canary.on("Analysing", AnalysisResult, go="Progressing", do=effects.advance)

canary.on(
    ["Progressing", "AwaitingStep", "AwaitingPromotion"],
    MetricSample,
    go="RollingBack",
    when=guards.sample_fails_at_threshold,
    do=effects.count_sample_failure,
)
canary.on(
    ["Starting", "Progressing", "Analysing", "AwaitingStep", "AwaitingPromotion"],
    ActivityFailed,
    go="RollingBack",
    do=effects.worker_failed,
)

# -- Promoting → Finalising → Succeeded ---------------------------------------

canary.on(
    "Promoting",
    Promoted,
    go="Finalising",
    when=guards.promoted_and_drained,
    do=effects.record_promotion,
)
canary.on(
    "Promoting",
    Promoted,
    go="Failed",
    when=guards.not_ready_past_deadline,
    do=effects.primary_not_ready,
)
canary.on("Promoting", Promoted, go=None, do=effects.record_promotion)
canary.on("Promoting", Timeout, go="Promoting", when=guards.primary_promoted, do=effects.shift_back)
canary.on("Promoting", Timeout, go="Promoting")
canary.on("Promoting", ActivityFailed, go="Initializing", do=effects.start_over)
canary.on("Finalising", Finalised, go="Succeeded", do=effects.finished)

# -- RollingBack → Failed → (retry) -------------------------------------------

canary.on("RollingBack", RolledBack, go="Failed", do=effects.rolled_back)
canary.on(
    "Failed",
    Command("retry"),
    go="Initializing",
    when=guards.can_retry,
    do=effects.retry,
)

canary.check()


@register
# Pinned: a rollout finishes on the worker version it started on (docs/operations.md).
@workflow.defn(name="canary", versioning_behavior=pinned())
class CanaryWorkflow(OperatorWorkflow):
    """One canary rollout per Deployment; ID ``canary/<namespace>/<name>``."""

    operator = canary

    @workflow.run
    async def run(self, input: OperatorInput) -> OperatorStatus:
        """Drive the canary machine until Succeeded or Aborted."""
        return await self.run_operator(input)
