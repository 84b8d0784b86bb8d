"""The engine's decision, as pure functions: which transition a trigger takes, and its effect.

The durable runtime (:mod:`workflows.engine.runtime`) calls exactly these, and so do the
machine tests: a test of an operator's rules checks the decision the workflow makes, not a
copy of it. Nothing here touches Temporal.

Rules, in the order the engine applies them:

1. the candidates are the transitions leaving the state whose trigger matches: the state's
   own first, then those declared for any state (``"*"``), each group in declaration order;
2. the first candidate whose guard passes (or that has none) is taken;
3. its effect, a pure function of the context, returns the machine's new data, which is
   validated by the operator's data model; with no effect the data is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from models.operator import CommandRequest
from workflows.engine.definition import Command, Ctx, Operator, TransitionDef, Trigger


def trigger_of(event: BaseModel) -> Trigger:
    """The trigger an event or command matches: ``Command(name)`` or the event's class."""
    if isinstance(event, CommandRequest):
        return Command(event.command)
    return type(event)  # type: ignore[return-value]


def candidates(op: Operator[Any, Any], state: str, trigger: Trigger) -> list[TransitionDef]:
    """The transitions leaving ``state`` on ``trigger``, in the order they are tried."""
    return [t for t in op.transitions_from(state) if t.trigger == trigger]


def choose(op: Operator[Any, Any], ctx: Ctx[Any, Any], trigger: Trigger) -> TransitionDef | None:
    """The transition the machine takes in ``ctx.state`` on ``trigger``, if any."""
    for transition in candidates(op, ctx.state, trigger):
        if transition.when is None or transition.when(ctx):
            return transition
    return None


def apply(op: Operator[Any, Any], transition: TransitionDef, ctx: Ctx[Any, Any]) -> BaseModel:
    """The machine's data after ``transition``'s effect, validated by the data model."""
    if transition.do is None:
        return ctx.data
    new_data = transition.do(ctx)
    return op.data.model_validate(new_data.model_dump())


@dataclass(frozen=True)
class Decision:
    """What the machine does with one event: the transition, where it goes, its new data."""

    transition: TransitionDef
    target: str
    data: BaseModel


def decide(
    op: Operator[Any, Any],
    state: str,
    event: BaseModel,
    *,
    spec: BaseModel,
    data: BaseModel | None = None,
    now: datetime,
) -> Decision | None:
    """Choose and apply in one step, as the runtime does; ``None`` when nothing matches."""
    ctx: Ctx[Any, Any] = Ctx(spec=spec, data=data or op.data(), state=state, now=now, event=event)
    transition = choose(op, ctx, trigger_of(event))
    if transition is None:
        return None
    new_data = apply(op, transition, ctx)
    return Decision(transition, transition.target or state, new_data)
