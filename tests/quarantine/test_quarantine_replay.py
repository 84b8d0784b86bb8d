"""Changes to the quarantine workflow must not break quarantines that are already open.

The history was recorded by ``record_history.py`` from a real run on the dev server: an
alert (and its repeat), its resolution, ``escalate``, then ``release``.
"""

from __future__ import annotations

from tests.quarantine.record_history import HISTORY
from tests.replay import replay_failure
from workflows.quarantine import QuarantineWorkflow


async def test_the_recorded_quarantine_history_replays_without_nondeterminism():
    failure = await replay_failure(
        QuarantineWorkflow, "quarantine/shop/payments", HISTORY.read_text()
    )
    assert failure is None, failure
