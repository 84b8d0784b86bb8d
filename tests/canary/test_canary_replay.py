"""Changes to the canary machine must not break rollouts that are already running.

The histories were recorded from end-to-end tests on the local cluster (a healthy rollout
through weights 10 to 50, before and after the notifier ran only for event webhooks, and
with its analyses and weight changes as local activities; one
queued for a permit; one rolled back that announced its story as Kubernetes Events); see
``histories.py``.
"""

from __future__ import annotations

import json

from tests.canary.histories import HISTORIES, decoded
from tests.replay import replay_failure
from workflows.canary import CanaryWorkflow
from workflows.canary.workers import NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH
from workflows.engine.runtime import LOCAL_WORKERS_PATCH
from workflows.rollout_slots import RolloutSlotsWorkflow


async def test_the_recorded_promotion_replays_without_nondeterminism():
    failure = await replay_failure(
        CanaryWorkflow, "canary/replay/podinfo", (HISTORIES / "canary_promoted.json").read_text()
    )
    assert failure is None, failure


async def test_a_promotion_recorded_when_every_step_ran_the_notifier_replays():
    """Recorded before ``canary-notify-only-with-event-hooks``: no event webhooks, yet
    ``canary.notify`` ran at every weight; the patch keeps it in the replay."""
    history = (HISTORIES / "canary_promoted.json").read_text()
    assert history.count('"name": "canary.notify"') == 8
    assert NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH not in decoded(json.loads(history))
    failure = await replay_failure(CanaryWorkflow, "canary/replay/podinfo", history)
    assert failure is None, failure


async def test_a_promotion_recorded_with_the_notifier_only_for_event_webhooks_replays():
    """Recorded with the patch (its marker is in the history): the same healthy rollout,
    no event webhooks, and no ``canary.notify`` at any step."""
    history = (HISTORIES / "canary_promoted_notify_only_with_event_hooks.json").read_text()
    assert '"name": "canary.notify"' not in history
    assert NOTIFY_ONLY_WITH_EVENT_HOOKS_PATCH in decoded(json.loads(history))
    failure = await replay_failure(CanaryWorkflow, "canary/replay/podinfo", history)
    assert failure is None, failure


async def test_a_promotion_recorded_with_local_analyses_and_weights_replays():
    """Recorded with ``local-workers-run-as-local-activities``: the analyses and weight
    changes are local activities (markers), no longer activity tasks."""
    history = (HISTORIES / "canary_promoted_local_workers.json").read_text()
    assert '"name": "canary.set_weight"' not in history  # no activity task of that name
    payloads = decoded(json.loads(history))
    assert LOCAL_WORKERS_PATCH in payloads and "canary.set_weight" in payloads  # a marker
    failure = await replay_failure(CanaryWorkflow, "canary/replay/podinfo", history)
    assert failure is None, failure


async def test_a_rollout_that_queued_for_a_permit_replays():
    """Recorded from the cap test: Queued until the first rollout succeeded, then promoted."""
    failure = await replay_failure(
        CanaryWorkflow,
        "canary/replay/queued",
        (HISTORIES / "canary_queued_for_a_permit.json").read_text(),
    )
    assert failure is None, failure


async def test_a_rollback_that_announced_its_story_as_kubernetes_events_replays():
    """Recorded from ``test_canary_events_e2e.py``: each verdict started ``canary.record_event``."""
    history = (HISTORIES / "canary_rolled_back_with_events.json").read_text()
    assert '"name": "canary.record_event"' in history
    failure = await replay_failure(CanaryWorkflow, "canary/replay/events", history)
    assert failure is None, failure


async def test_a_semaphore_that_granted_through_the_activity_replays():
    """Recorded before ``rollout-slots-grant-by-signal``: grants went through an activity."""
    failure = await replay_failure(
        RolloutSlotsWorkflow,
        "rollout-slots/global",
        (HISTORIES / "rollout_slots_grant_by_activity.json").read_text(),
    )
    assert failure is None, failure


async def test_a_semaphore_that_granted_by_signal_replays():
    """Recorded with the patch: the semaphore signalled each grant to the rollout itself."""
    failure = await replay_failure(
        RolloutSlotsWorkflow,
        "rollout-slots/global",
        (HISTORIES / "rollout_slots_grant_by_signal.json").read_text(),
    )
    assert failure is None, failure


async def test_a_rollback_recorded_in_git_replays():
    """Recorded from ``test_canary_gitops_e2e.py``: Failed ran ``canary.record_rollback``."""
    history = (HISTORIES / "canary_rolled_back_recorded_in_git.json").read_text()
    assert '"name": "canary.record_rollback"' in history
    failure = await replay_failure(CanaryWorkflow, "canary/replay/git", history)
    assert failure is None, failure
