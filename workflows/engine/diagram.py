"""An operator drawn for people: table rows and a Mermaid state diagram.

Pure functions of an :class:`~workflows.engine.definition.Operator` (no I/O, so this module
may live under ``workflows/``); ``autopilot describe`` prints them and the docs embed the
diagrams. Commands are written ``/approve``; a timer's transition ``after 24h`` (or
``after interval()`` when the duration is computed from the spec); a guard in brackets.

The diagram shows moves between states; internal transitions (``go=None``, the machine
stays and only its data changes) are left to the table, where every transition is listed.
Transitions declared for any state (``"*"``) come from one pseudo-state, "any non-final
state", instead of an arrow from each state.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from workflows.engine.definition import (
    ANY,
    ENGINE_COMMANDS,
    Operator,
    StateDef,
    Timeout,
    TransitionDef,
)

#: The Mermaid ID of the pseudo-state wildcard transitions start from.
ANY_STATE_ID = "any_state"

_PLAIN_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MERMAID_KEYWORDS = {"state", "note", "direction", "class", "classdef", "end", "as", "click"}


@dataclass(frozen=True)
class StateRow:
    """One state as ``describe`` lists it."""

    name: str
    kinds: tuple[str, ...]
    workers: tuple[str, ...]
    timer: str
    doc: str


@dataclass(frozen=True)
class TransitionRow:
    """One declared transition as ``describe`` lists it."""

    source: str
    trigger: str
    guard: str
    target: str
    effect: str
    doc: str


def format_timedelta(value: timedelta) -> str:
    """``1d2h``, ``24h``, ``5m``, ``30s``, ``500ms``: the shortest exact form."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


def timer_text(state: StateDef) -> str:
    """``24h`` or ``interval()``; empty for a state without a timer."""
    after = state.after
    if after is None:
        return ""
    if isinstance(after, timedelta):
        return format_timedelta(after)
    return f"{getattr(after, '__name__', 'duration')}()"


def kinds_of(operator: Operator[Any, Any], state: StateDef) -> tuple[str, ...]:
    """``initial``, ``final``, ``settled``, ``failed``: what a state is, in that order."""
    flags = (
        ("initial", state.name == operator.initial),
        ("final", state.final),
        ("settled", state.settled),
        ("failed", state.failed),
    )
    return tuple(name for name, on in flags if on)


def state_rows(operator: Operator[Any, Any]) -> list[StateRow]:
    """Every state, in declaration order."""
    rows = []
    for state in operator.states.values():
        timer = timer_text(state)
        if timer:
            targets = _timeout_targets(operator, state.name)
            if len(targets) == 1:
                timer = f"{timer} → {targets[0]}"
        rows.append(
            StateRow(
                name=state.name,
                kinds=kinds_of(operator, state),
                workers=tuple(ref.shown_name for ref in state.run),
                timer=timer,
                doc=state.doc,
            )
        )
    return rows


def _timeout_targets(operator: Operator[Any, Any], state: str) -> list[str]:
    found = []
    for transition in operator.transitions:
        if transition.source == state and transition.trigger is Timeout:
            target = transition.target or state
            if target not in found:
                found.append(target)
    return found


def trigger_text(operator: Operator[Any, Any], source: str, trigger: Any) -> str:
    """``/approve``, ``Vote`` or ``after 24h`` for a transition's trigger."""
    if trigger is Timeout and source in operator.states:
        timer = timer_text(operator.states[source])
        if timer:
            return f"after {timer}"
    if isinstance(trigger, type):
        name: str = getattr(trigger, "type_name", lambda: trigger.__name__)()
        return name
    return f"/{trigger.name}"


def transition_rows(operator: Operator[Any, Any]) -> list[TransitionRow]:
    """Every declared transition, grouped by source state, in the order the engine tries them.

    States come in declaration order, then the wildcard (``*``) transitions, which the
    engine tries after a state's own.
    """
    rows = []
    for transition in _by_source(operator):
        effect = getattr(transition.do, "__name__", "") if transition.do is not None else ""
        rows.append(
            TransitionRow(
                source=transition.source,
                trigger=trigger_text(operator, transition.source, transition.trigger),
                guard=transition.guard_name or "",
                target=transition.target if transition.target is not None else "(stays)",
                effect="" if effect == "<lambda>" else effect,
                doc=transition.doc,
            )
        )
    return rows


def _by_source(operator: Operator[Any, Any]) -> list[TransitionDef]:
    """Transitions grouped by source state (declaration order), wildcard ones last."""
    position = {name: index for index, name in enumerate(operator.states)}
    position[ANY] = len(position)
    return sorted(operator.transitions, key=lambda t: (position.get(t.source, -1), t.order))


def engine_notes(operator: Operator[Any, Any]) -> list[str]:
    """What the engine adds to every machine (not declared as transitions)."""
    notes = []
    if operator.pausable:
        notes.append(
            f"/{ENGINE_COMMANDS[0]} and /{ENGINE_COMMANDS[1]} are accepted in every "
            "non-final state: timers freeze and watcher events wait meanwhile"
        )
    notes.append(
        "/retry (unless the operator declares its own) runs the current state's workers "
        "again after one failed and no transition took the failure"
    )
    return notes


def _mermaid_id(name: str, index: int) -> str:
    plain = _PLAIN_ID.match(name) and not keyword.iskeyword(name)
    if plain and name.lower() not in _MERMAID_KEYWORDS and name != ANY_STATE_ID:
        return name
    return f"s{index}"


def _label(text: str) -> str:
    """A transition label Mermaid parses as plain text."""
    return re.sub(r"[;\n\r]+", ",", text).replace("#", "no.").strip()


def mermaid(operator: Operator[Any, Any]) -> str:
    """The operator as a Mermaid ``stateDiagram-v2``.

    Edges between the same two states are merged into one, their triggers listed; guards
    of one trigger are joined with ``or`` (an unguarded one makes the guards moot).
    """
    ids = {name: _mermaid_id(name, i) for i, name in enumerate(operator.states)}
    lines = ["stateDiagram-v2"]
    for name, state_id in ids.items():
        if state_id != name:
            lines.append(f'    state "{_label(name)}" as {state_id}')
    edges: dict[tuple[str, str], dict[str, list[str | None]]] = {}
    for transition in _by_source(operator):
        if transition.target is None:
            continue
        source = ANY_STATE_ID if transition.source == ANY else ids[transition.source]
        trigger = trigger_text(operator, transition.source, transition.trigger)
        guards = edges.setdefault((source, ids[transition.target]), {}).setdefault(trigger, [])
        guards.append(transition.guard_name)
    if any(source == ANY_STATE_ID for source, _ in edges):
        lines.append(f'    state "any non-final state" as {ANY_STATE_ID}')
    lines.append(f"    [*] --> {ids[operator.initial]}")
    for (source, target), triggers in edges.items():
        labels = []
        for trigger, guards in triggers.items():
            named = [g for g in guards if g is not None]
            if None in guards or not named:
                labels.append(trigger)
            else:
                labels.append(f"{trigger} [{' or '.join(dict.fromkeys(named))}]")
        lines.append(f"    {source} --> {target}: {_label(', '.join(labels))}")
    for name, state in operator.states.items():
        if state.final:
            lines.append(f"    {ids[name]} --> [*]")
    styles = {
        "failed": "fill:#f8d7da,stroke:#c0392b",
        "settled": "fill:#fff3cd,stroke:#b7950b",
        "succeeded": "fill:#d4edda,stroke:#1e8449",
    }
    members: dict[str, list[str]] = {kind: [] for kind in styles}
    for name, state in operator.states.items():
        if state.failed and (state.final or state.settled):
            members["failed"].append(ids[name])
        elif state.settled:
            members["settled"].append(ids[name])
        elif state.final:
            members["succeeded"].append(ids[name])
    for kind, style in styles.items():
        if members[kind]:
            lines.append(f"    classDef {kind} {style}")
            lines.append(f"    class {','.join(members[kind])} {kind}")
    return "\n".join(lines) + "\n"
