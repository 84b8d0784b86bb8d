"""The engine's model test, bounded for CI: a fixed set of interleavings, the same every run.

``tests/model/machine.py`` says what the state machine does and checks. Here it runs with
hypothesis derandomized and without a database, so CI tries the same examples every time
(about two minutes on two cores); ``python -m bench.model_engine`` tries many more, with
random seeds.
"""

from __future__ import annotations

import pytest

from tests.model.machine import model_settings, run_model
from tests.model.world import World

pytestmark = pytest.mark.temporal

#: Examples and the most steps each may take: what CI can afford (see docs/testing.md).
CI_EXAMPLES = 16  # bug 1 fell at the 7th; 40 took five and a half minutes of CI
CI_STEPS = 50


async def test_no_interleaving_leaves_a_run_stuck_a_command_unanswered_or_a_history_unreplayable(
    world: World,
):
    try:
        await run_model(world, model_settings(CI_EXAMPLES, CI_STEPS))
    finally:
        print(f"model test: {world.stats.line()}\n{world.stats.coverage()}")
