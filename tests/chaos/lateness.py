"""How late each rollout's next action was after a worker kill, read from its history.

An *action* is an activity attempt starting, or a local activity running (its marker names
the workflow task it ran in, whose start is the action's). It was *due*:

* for a first attempt, when the server first had something for the workflow to decide
  (the first ``WorkflowTaskScheduled`` of the chain of workflow tasks, timed-out ones
  included, whose completion scheduled it: a timer firing, an activity finishing, a signal);
* for a later attempt, at the kill that ended the attempt before it (a worker kill between
  its scheduling and this start); a retry that no kill explains is not counted.

For each worker kill and each rollout, the first action that started after the kill is
counted: ``started - due``. A crash-free machine shows a few hundred milliseconds; issue 15's
target is under 5 s at p99. The counts are split: *alone*, when no other kill (of any
component) fell between the earlier of the due time and the kill, and the start; and
*compound*, when one did (a second worker kill while the new one starts, the Temporal
server or etcd down meanwhile), which one crash alone does not cost.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

_RETRIED_TASK = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
}
#: The marker a local activity leaves in its run's history.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class Action:
    started: float
    due: float | None  # None: a retry no kill explains
    scheduled: float
    attempt: int


def event_seconds(event: HistoryEvent) -> float:
    """A history event's time as ``time.time()`` counts (the server's clock)."""
    return event.event_time.ToMicroseconds() / 1e6


def actions(events: Sequence[HistoryEvent], kills: Sequence[float]) -> list[Action]:
    """Every activity start of one run with when it was due."""
    by_id = {e.event_id: e for e in events}
    index = {e.event_id: i for i, e in enumerate(events)}
    found: list[Action] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                completed = by_id[marker.workflow_task_completed_event_id]
                ran_in = by_id[completed.workflow_task_completed_event_attributes.started_event_id]
                started = event_seconds(ran_in)
                found.append(Action(started, _due(events, index[ran_in.event_id]), started, 1))
            continue
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            continue
        attrs = event.activity_task_started_event_attributes
        scheduled = by_id[attrs.scheduled_event_id]
        completed_id = (
            scheduled.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        )
        started, sched_at = event_seconds(event), event_seconds(scheduled)
        if attrs.attempt > 1:
            between = [k for k in kills if sched_at < k < started]
            found.append(
                Action(started, max(between) if between else None, sched_at, attrs.attempt)
            )
            continue
        found.append(Action(started, _due(events, index[completed_id] - 1), sched_at, 1))
    return found


def _due(events: Sequence[HistoryEvent], i: int) -> float:
    """When the workflow task at or before ``events[i]`` was first due: walking back over
    the failed and timed-out attempts of it, to the first one scheduled."""
    due = event_seconds(events[i])
    while i >= 0 and events[i].event_type in _RETRIED_TASK:
        if events[i].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            due = event_seconds(events[i])
        i -= 1
    return due


@dataclass
class Lateness:
    """How late each rollout's first action after each worker kill was, in two groups."""

    #: Nothing else was killed between when the action was due (or the kill, if earlier)
    #: and when it started: what one worker crash costs.
    alone: list[float] = field(default_factory=list)
    #: Another kill, of any component, fell in that window: compound failures.
    compound: list[float] = field(default_factory=list)


def next_after_kills(
    per_run: Sequence[Sequence[Action]],
    kills: Sequence[float],
    every_kill: Sequence[float] = (),
) -> Lateness:
    """For each worker kill in ``kills`` and each run, how late the first action after the
    kill was; grouped by whether another of ``every_kill`` (every component's kills) fell
    between the earlier of its due time and the kill, and its start."""
    found = Lateness()
    for kill in kills:
        for run in per_run:
            after = sorted((a for a in run if a.started > kill), key=lambda a: a.started)
            due = after[0].due if after else None
            if due is None:
                continue
            action = after[0]
            late = max(0.0, action.started - due)
            since = min(due, kill)
            others = [k for k in every_kill if since <= k < action.started and k != kill]
            (found.compound if others else found.alone).append(late)
    return found


def lateness_after_kills(
    histories: Sequence[WorkflowHistory],
    kills: Sequence[float],
    every_kill: Sequence[float] = (),
) -> Lateness:
    """:func:`next_after_kills` over the given runs' histories."""
    if not kills:
        return Lateness()
    runs = [actions(list(history.events), kills) for history in histories]
    return next_after_kills(runs, kills, every_kill)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def summary(values: Sequence[float]) -> str:
    """``p50 0.41 s, p99 3.9 s, max 4.2 s over 120``, or that there were none."""
    if not values:
        return "no worker kills measured"
    return (
        f"p50 {percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s, "
        f"max {max(values):.2f} s over {len(values)}"
    )
