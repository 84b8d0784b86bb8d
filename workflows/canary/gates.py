"""The three gates of a rollout, in one table: the state, its confirm hooks, its manual flag.

A gate holds the rollout until its confirm hooks say yes and, when its flag in
``analysis.gates`` is set, until ``autopilot approve``. Every guard and effect that asks
about a gate reads this table, so a gate's name is written once.
"""

from collections.abc import Callable
from dataclasses import dataclass

from models.canary import CanarySpec, Gates, HookType


@dataclass(frozen=True)
class Gate:
    """One gate: the state the rollout waits in, its hooks and its approval flag."""

    state: str
    hooks: HookType
    manual: Callable[[Gates], bool]

    def needs_approval(self, spec: CanarySpec) -> bool:
        """The spec asks for ``autopilot approve`` at this gate."""
        return self.manual(spec.analysis.gates)

    def has_hooks(self, spec: CanarySpec) -> bool:
        """The spec has confirm hooks for this gate."""
        return bool(spec.analysis.hooks(self.hooks))

    def closed(self, spec: CanarySpec) -> bool:
        """The rollout stops at this gate (an approval flag or confirm hooks)."""
        return self.needs_approval(spec) or self.has_hooks(spec)


START = Gate("Waiting", HookType.CONFIRM_ROLLOUT, lambda gates: gates.before_start)
STEP = Gate("AwaitingStep", HookType.CONFIRM_TRAFFIC_INCREASE, lambda g: g.before_each_step)
PROMOTION = Gate(
    "AwaitingPromotion", HookType.CONFIRM_PROMOTION, lambda gates: gates.before_promotion
)

#: Every gate by the state that waits at it.
GATES: dict[str, Gate] = {gate.state: gate for gate in (START, STEP, PROMOTION)}
