"""The worker refuses to start when a sense or a webhook route feeds an event nothing handles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from models.events import Event
from models.senses import Dedicated, KubeChange, WatchKind, Webhook
from service.feeds import feed_problems
from service.settings import WebhookSettings
from workflows.engine import Command, DefinitionError, Operator
from workflows.registry import operators

ROOT = Path(__file__).resolve().parents[2]


class _Spec(BaseModel):
    pass


class _Data(BaseModel):
    pass


class Ping(Event):
    pass


class Pong(Event):
    pass


def _operator(
    *senses: object, handles: tuple[type[Event], ...] = (Ping,)
) -> Operator[_Spec, _Data]:
    op: Operator[_Spec, _Data] = Operator(
        "echo",
        spec=_Spec,
        data=_Data,
        initial="Idle",
        senses=list(senses),  # type: ignore[arg-type]
    )
    op.state("Idle", settled=True)
    op.state("Done", final=True)
    for event in handles:
        op.on("Idle", event, go="Done")
    op.on("Idle", Command("stop"), go="Done")
    return op


def _no_events(change: KubeChange) -> list[object]:
    return []


def test_a_sense_that_sends_an_unhandled_event_is_refused_naming_operator_sense_and_event() -> None:
    kind = WatchKind("", "v1", "configmaps", map=_no_events, sends=(Ping, Pong))  # type: ignore[arg-type]
    with pytest.raises(DefinitionError) as refused:
        _operator(kind).check()
    message = str(refused.value)
    assert "'echo'" in message
    assert "watch configmaps/v1" in message
    assert "'Pong'" in message
    assert "'Ping'" not in message


def test_senses_whose_events_are_all_handled_pass() -> None:
    _operator(Webhook(sends=(Ping,)), handles=(Ping,)).check()


def test_a_dedicated_watcher_must_be_one_the_runtime_ships() -> None:
    with pytest.raises(ValueError, match="no dedicated watcher 'pagerduty'"):
        Dedicated("pagerduty", sends=(Ping,))


def test_the_built_in_operators_declare_every_feed_they_have() -> None:
    known = operators()
    assert feed_problems(known, WebhookSettings()) == []
    assert {type(s).__name__ for s in known["canary"].senses} == {"Dedicated", "Webhook"}


def test_a_webhook_route_to_an_unknown_operator_or_an_unhandled_event_is_a_problem() -> None:
    settings = WebhookSettings(
        allowed_event_types={"canary": ["NewRevision", "CanaryRequested"], "ghost": ["Boo"]},
        alert_operator="canary",
        github_operator="ghostroute",
    )
    problems = "\n".join(feed_problems(operators(), settings))
    assert "event 'CanaryRequested' to operator 'canary'" in problems
    assert "operator 'ghost', which is not registered" in problems
    assert "alert_operator names operator 'canary', which does not declare the 'alertmanager'" in (
        problems
    )
    assert "github_operator names operator 'ghostroute', which is not registered" in problems
    assert "NewRevision" not in problems


def _worker(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOPILOT_", "TEMPORAL_"))}
    clean.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "worker_main.py", "--address", "127.0.0.1:1", "--metrics-port", "0"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_worker_refuses_an_operator_whose_sense_sends_an_unhandled_event() -> None:
    ran = _worker(AUTOPILOT_OPERATOR_MODULES="tests.framework.deaf_operator")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "operator 'deaf' is not valid" in ran.stderr
    assert "webhook /v1/events sends event 'Knock', which no transition handles" in ran.stderr


def test_the_worker_refuses_an_alert_route_to_an_operator_without_that_watcher() -> None:
    ran = _worker(AUTOPILOT_WEBHOOK_ALERT_OPERATOR="canary")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "alert_operator names operator 'canary'" in ran.stderr
