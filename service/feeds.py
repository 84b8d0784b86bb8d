"""What feeds each operator, and the check that every feed reaches a transition.

The worker loads the operators (the registry), hands their senses to the watcher runtime
(:func:`sense_table`) and, before it starts anything, refuses a configuration in which a
route can send an event that nothing handles (:func:`feed_problems`):

* a sense whose event no transition handles is already refused when the operator is
  defined (:func:`workflows.engine.checks.sense_problems`);
* here, the webhook settings are checked against the operators: ``allowed_event_types``
  naming an operator that is not registered or an event no transition of it handles, an
  ``alert_operator`` or ``github_operator`` that is not registered or does not declare that
  watcher.

Each problem is one sentence naming the operator, the event and the route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.senses import Dedicated, OperatorSenses
from service.settings import WebhookSettings
from workflows.engine import Operator


class FeedError(ValueError):
    """A route or sense can send an event no operator handles; lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"the operators' feeds are not consistent:\n{lines}")


def sense_table(operators: Mapping[str, Operator[Any, Any]]) -> list[OperatorSenses]:
    """Every operator's senses, for the watcher runtime."""
    return [
        OperatorSenses(name, tuple(operator.senses)) for name, operator in sorted(operators.items())
    ]


def _declares(operator: Operator[Any, Any], watcher: str) -> bool:
    return any(isinstance(s, Dedicated) and s.watcher == watcher for s in operator.senses)


def _dedicated_route(
    operators: Mapping[str, Operator[Any, Any]], name: str | None, watcher: str, setting: str
) -> list[str]:
    if name is None:
        return []
    if name not in operators:
        known = ", ".join(sorted(operators)) or "none"
        return [f"{setting} names operator {name!r}, which is not registered (known: {known})"]
    if not _declares(operators[name], watcher):
        return [
            f"{setting} names operator {name!r}, which does not declare the {watcher!r} "
            f"watcher (Dedicated({watcher!r}, sends=...)) in its senses"
        ]
    return []


def feed_problems(
    operators: Mapping[str, Operator[Any, Any]], webhooks: WebhookSettings
) -> list[str]:
    """Every route the settings open that would send an event nothing handles."""
    found: list[str] = []
    for name, types in sorted((webhooks.allowed_event_types or {}).items()):
        if name not in operators:
            found.append(
                f"allowed_event_types names operator {name!r}, which is not registered "
                f"(known: {', '.join(sorted(operators)) or 'none'})"
            )
            continue
        handled = operators[name].handled_events()
        for event in types:
            if event not in handled:
                found.append(
                    f"allowed_event_types lets POST /v1/events send event {event!r} to operator "
                    f"{name!r}, and no transition of it handles {event!r}"
                )
    found += _dedicated_route(operators, webhooks.alert_operator, "alertmanager", "alert_operator")
    found += _dedicated_route(operators, webhooks.github_operator, "github", "github_operator")
    return found


def check_feeds(operators: Mapping[str, Operator[Any, Any]], webhooks: WebhookSettings) -> None:
    """Refuse the configuration when :func:`feed_problems` finds anything.

    Raises:
        FeedError: naming every operator, event and route concerned.
    """
    problems = feed_problems(operators, webhooks)
    if problems:
        raise FeedError(problems)
