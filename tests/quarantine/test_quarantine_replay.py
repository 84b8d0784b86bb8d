"""Changes to the quarantine workflow must not break quarantines that are already open.

The history was recorded by ``record_history.py`` from a real run on the dev server: an
alert (and its repeat), its resolution, ``escalate``, then ``release``. The second, by
``record_gitops_history.py``: the GitOps path (record pull request merged, release through a
pull request found merged by the poll, the GitOps engine's prune).
"""

from __future__ import annotations

from tests.quarantine.record_gitops_history import HISTORY as GIT_HISTORY
from tests.quarantine.record_gitops_history import NAME as GIT_NAME
from tests.quarantine.record_history import HISTORY
from tests.replay import replay_failure
from workflows.quarantine import QuarantineWorkflow


async def test_the_recorded_quarantine_history_replays_without_nondeterminism():
    failure = await replay_failure(
        QuarantineWorkflow, "quarantine/shop/payments", HISTORY.read_text()
    )
    assert failure is None, failure


async def test_a_quarantine_released_through_git_replays_without_nondeterminism():
    failure = await replay_failure(
        QuarantineWorkflow, f"quarantine/shop/{GIT_NAME}", GIT_HISTORY.read_text()
    )
    assert failure is None, failure
