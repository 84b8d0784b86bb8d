"""Consistency checks run on every operator definition before it can be used.

Solo's Autopilot let a worker return any next phase, unchecked; here a machine with an
unreachable state, a state with no way to finish, a dead or ambiguous transition or a
command no state accepts is refused when it is loaded, and each problem names the state
and event it concerns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from workflows.engine.definition import (
    ANY,
    BUILTIN_EVENTS,
    ENGINE_COMMANDS,
    Command,
    Timeout,
    TransitionDef,
    sense_events,
)

if TYPE_CHECKING:
    from workflows.engine.definition import Operator


def problems_of(op: Operator[Any, Any]) -> list[str]:
    """Every problem found in ``op``, as sentences naming states and events."""
    problems: list[str] = []
    problems += _unknown_names(op)
    if problems:
        return problems
    problems += _data_defaults(op)
    problems += _timers(op)
    problems += _waits(op)
    problems += _finals(op)
    problems += _reachability(op)
    problems += _shadowed(op)
    problems += _commands(op)
    problems += _activities(op)
    problems += sense_problems(op)
    return problems


def sense_problems(op: Operator[Any, Any]) -> list[str]:
    """Every event a declared sense can send must be handled by some transition.

    A sense whose event no transition handles would feed the machine something it drops in
    silence, the most confusing way for a watcher to be wrong, so the operator is refused.
    """
    handled = op.handled_events()
    found = []
    for sense in op.senses:
        for model in sense_events(sense):
            if model.type_name() not in handled:
                found.append(
                    f"{sense.describe} sends event {model.type_name()!r}, which no transition "
                    "handles: add a transition on it, or drop it from the sense's sends"
                )
    return found


def _unknown_names(op: Operator[Any, Any]) -> list[str]:
    found: list[str] = []
    if op.initial not in op.states:
        found.append(f"initial state {op.initial!r} is not declared")
    for t in op.transitions:
        if t.source != ANY and t.source not in op.states:
            found.append(f"transition on {t.trigger_name} leaves unknown state {t.source!r}")
        if t.target is not None and t.target not in op.states:
            found.append(
                f"transition from {t.source!r} on {t.trigger_name} goes to unknown state "
                f"{t.target!r}"
            )
    builtin = {e.type_name() for e in BUILTIN_EVENTS}
    for model in op.events:
        if model.type_name() in builtin and model not in BUILTIN_EVENTS:
            found.append(f"event {model.type_name()!r} has the name of a built-in event")
    return found


def _data_defaults(op: Operator[Any, Any]) -> list[str]:
    try:
        op.data()
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
        return [f"data model {op.data.__name__} needs a default for: {fields}"]
    return []


def _timers(op: Operator[Any, Any]) -> list[str]:
    found = []
    for state in op.states.values():
        handles_timeout = any(t.trigger is Timeout for t in op.transitions_from(state.name))
        if state.after is not None and not handles_timeout:
            found.append(f"state {state.name!r} starts a timer but no transition handles Timeout")
        if state.after is not None and state.final:
            found.append(f"final state {state.name!r} cannot have a timer")
    return found


def _waits(op: Operator[Any, Any]) -> list[str]:
    """A running machine always waits for something: a worker's result, a timer, or a human.

    A state that is neither final nor settled, has no timer and runs no worker that returns an
    event would leave its workflow Running with nothing scheduled; if it waits for a human or
    a watcher's event, it says so with ``settled=True``.
    """
    found = []
    for state in op.states.values():
        if state.final or state.settled or state.after is not None or state.waits_for:
            continue
        if not any(ref.returns is not None for ref in state.run):
            found.append(
                f"state {state.name!r} waits for nothing: it has no timer and no worker that "
                "returns an event; declare settled=True if it waits for a command or a "
                "watcher's event, or waits_for= what else it waits for"
            )
    return found


def _finals(op: Operator[Any, Any]) -> list[str]:
    found = []
    if not any(s.final for s in op.states.values()):
        found.append("no state is final: declare at least one state with final=True")
    for state in op.states.values():
        if state.final and any(t.source == state.name for t in op.transitions):
            found.append(f"final state {state.name!r} has outgoing transitions")
    return found


def _edges(op: Operator[Any, Any]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name in op.states:
        for t in op.transitions_from(name):
            edges[name].add(t.target if t.target is not None else name)
    return edges


def _reachability(op: Operator[Any, Any]) -> list[str]:
    edges = _edges(op)
    reachable = {op.initial}
    frontier = [op.initial]
    while frontier:
        for nxt in edges[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    found = [
        f"state {name!r} is unreachable from the initial state {op.initial!r}"
        for name in op.states
        if name not in reachable
    ]
    finals = {name for name, s in op.states.items() if s.final}
    if finals:
        reverse: dict[str, set[str]] = defaultdict(set)
        for src, targets in edges.items():
            for dst in targets:
                reverse[dst].add(src)
        can_finish = set(finals)
        frontier = list(finals)
        while frontier:
            for prev in reverse[frontier.pop()]:
                if prev not in can_finish:
                    can_finish.add(prev)
                    frontier.append(prev)
        found += [
            f"state {name!r} has no path to a final state"
            for name in op.states
            if name in reachable and name not in can_finish
        ]
    return found


def _shadowed(op: Operator[Any, Any]) -> list[str]:
    found = []
    groups: dict[tuple[str, str], list[TransitionDef]] = defaultdict(list)
    for t in op.transitions:
        groups[(t.source, t.trigger_name)].append(t)
    for (source, trigger), group in groups.items():
        for index, t in enumerate(group[:-1]):
            later = group[index + 1 :]
            if t.when is None:
                found.append(
                    f"in state {source!r} on {trigger}: the transition to {t.target!r} has no "
                    f"guard, so the {len(later)} declared after it can never be taken"
                )
                break
            for other in later:
                if other.when is t.when:
                    found.append(
                        f"in state {source!r} on {trigger}: two transitions share the guard "
                        f"{t.guard_name!r}; the second can never be taken"
                    )
    return found


def _commands(op: Operator[Any, Any]) -> list[str]:
    found = []
    declared = {t.trigger.name for t in op.transitions if isinstance(t.trigger, Command)}
    accepted = {c for name in op.states for c in op.commands_in(name)}
    for name in sorted(declared - accepted):
        found.append(f"command {name!r} is accepted in no state")
    if op.pausable:
        for name in declared & set(ENGINE_COMMANDS):
            found.append(f"command {name!r} is built into the engine; set pausable=False to own it")
    return found


def _activities(op: Operator[Any, Any]) -> list[str]:
    found = []
    seen: dict[str, Any] = {}
    for state in op.states.values():
        for ref in state.run:
            if ref.name in seen and seen[ref.name] != ref:
                found.append(
                    f"activity {ref.name!r} is declared twice with different settings "
                    f"(state {state.name!r})"
                )
            seen[ref.name] = ref
    return found
