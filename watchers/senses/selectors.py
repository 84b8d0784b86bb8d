"""Kubernetes label selectors, matched by the watcher when the API server cannot do it.

Why here: one informer serves every sense on a kind, so when two senses select different
labels the informer lists the kind unfiltered and each sense's selector is applied to the
objects it receives. The syntax is the API server's own (equality- and set-based):
``app=web``, ``app==web``, ``tier!=db``, ``canary``, ``!canary``, ``env in (a, b)``,
``env notin (c)``, joined by commas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Requirement = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQUALITY = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)\s*$")


class SelectorError(ValueError):
    """A label selector the watcher cannot read; the message quotes the bad part."""


def _split(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( ... )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _requirement(part: str) -> Requirement:
    if match := _SET.match(part):
        key = match["key"]
        values = {value.strip() for value in match["values"].split(",") if value.strip()}
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(part):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(part):
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"cannot read the label selector part {part.strip()!r}")


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector; ``LabelSelector.parse("")`` matches everything."""

    text: str
    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse ``text``.

        Raises:
            SelectorError: a part is not a requirement the API server would accept.
        """
        return cls(text, tuple(_requirement(part) for part in _split(text)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        return all(requirement(labels) for requirement in self.requirements)
