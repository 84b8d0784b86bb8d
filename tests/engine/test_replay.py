"""Workflow code changes must not break the replay of histories already recorded.

A rollout that runs for days is replayed by every new worker version; a change in the
engine that issues different commands for the same history would wedge it. The history
here was recorded by ``record_history.py`` from a real run: votes (one duplicated),
pause, resume, approval, a worker's result and completion.
"""

from __future__ import annotations

from tests.engine.record_history import HISTORY
from tests.engine.record_late_event_history import HISTORIES
from tests.engine.ticket_operator import TicketWorkflow
from tests.replay import replay_failure


async def test_the_recorded_ticket_history_replays_without_nondeterminism():
    failure = await replay_failure(TicketWorkflow, "ticket/tests/replay", HISTORY.read_text())
    assert failure is None, failure


async def test_a_run_that_dropped_a_late_event_before_the_patch_still_replays():
    """Recorded before ``carry-late-events-to-a-new-run``: the vote was dropped at Done."""
    failure = await replay_failure(
        TicketWorkflow,
        "ticket/tests/late-vote",
        (HISTORIES / "ticket_late_vote_unpatched.json").read_text(),
    )
    assert failure is None, failure


async def test_a_run_that_handed_a_late_event_to_a_new_run_replays():
    """Recorded with the patch: the vote that arrived at Done continued as a new run."""
    failure = await replay_failure(
        TicketWorkflow,
        "ticket/tests/late-vote",
        (HISTORIES / "ticket_late_vote_patched.json").read_text(),
    )
    assert failure is None, failure
