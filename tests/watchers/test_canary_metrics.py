"""The canary metrics as the status mirror feeds them (no cluster): Flagger's values, one
series per canary while leading and none after, and each analysis counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from models.operator import OperatorStatus, Target, TransitionRecord
from watchers.kube.canary_metrics import CanaryMetrics, analyses, status_value
from watchers.kube.index import CanaryIndex
from watchers.kube.objects import CanaryObject

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def canary_object(name: str = "rollout", target: str = "web") -> CanaryObject:
    return CanaryObject.from_raw(
        {
            "metadata": {"name": name, "namespace": "shop", "uid": "u", "generation": 1},
            "spec": {"targetRef": {"name": target}},
        }
    )


def moved(seconds: float, source: str, target: str) -> TransitionRecord:
    at = T0 + timedelta(seconds=seconds)
    return TransitionRecord(at=at, source=source, target=target, event="e", event_id=str(seconds))


def status(transitions: list[TransitionRecord], **data: Any) -> OperatorStatus:
    return OperatorStatus(
        workflow_id="canary/shop/web",
        operator="canary",
        target=Target(namespace="shop", name="web"),
        state="Progressing",
        final=False,
        settled=False,
        outcome="running",
        paused=False,
        since=T0,
        data=data,
        transitions=transitions,
    )


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_status_value_is_flaggers() -> None:
    assert [status_value(p) for p in ("Progressing", "Succeeded", "Failed", "Waiting")] == [
        0,
        1,
        2,
        1,
    ]


def test_each_analysis_lasts_from_entering_analysing_to_leaving_it() -> None:
    transitions = [
        moved(0, "Starting", "Progressing"),
        moved(2, "Progressing", "Analysing"),
        moved(2.5, "Analysing", "Analysing"),  # an approval handled in place
        moved(3.5, "Analysing", "Progressing"),
        moved(5, "Progressing", "Analysing"),
        moved(5.25, "Analysing", "RollingBack"),
    ]

    assert [seconds for _, seconds in analyses(transitions)] == [1.5, 0.25]


def test_a_leader_shows_each_canary_with_flaggers_labels_and_forgets_it_on_resigning() -> None:
    registry, index, known = CollectorRegistry(), CanaryIndex(), canary_object()
    index.put(known)
    metrics = CanaryMetrics.for_registry(registry)
    metrics.lead(index, now=T0)
    analysis = {"metrics": [{"name": "request-success-rate", "value": 99.5}]}
    fields = {"phase": "Progressing", "canaryWeight": 30}

    metrics.observe(known, fields, status([], applied_weights=[0, 10, 20], last_analysis=analysis))
    shown = samples(registry)

    web = frozenset({("name", "web"), ("namespace", "shop")})
    assert shown[("autopilot_canary_status", web)] == 0
    weight = "autopilot_canary_weight"
    assert shown[(weight, frozenset({("workload", "web-primary"), ("namespace", "shop")}))] == 80
    assert shown[(weight, frozenset({("workload", "web"), ("namespace", "shop")}))] == 20
    assert shown[("autopilot_canary_total", frozenset({("namespace", "shop")}))] == 1
    metric = frozenset({("name", "web"), ("namespace", "shop"), ("metric", "request-success-rate")})
    assert shown[("autopilot_canary_metric_analysis", metric)] == 99.5

    metrics.resign(index)
    after = {name for name, _ in samples(registry)}
    assert not after & {"autopilot_canary_status", "autopilot_canary_weight"}
    assert "autopilot_info" in after


def test_an_analysis_is_counted_once_and_only_if_it_ended_in_the_leaders_term() -> None:
    registry, index, known = CollectorRegistry(), CanaryIndex(), canary_object()
    index.put(known)
    metrics = CanaryMetrics.for_registry(registry)
    metrics.lead(index, now=T0 + timedelta(seconds=4))
    history = [
        moved(1, "Progressing", "Analysing"),
        moved(2, "Analysing", "Progressing"),  # before the term: the last leader's
        moved(5, "Progressing", "Analysing"),
        moved(8, "Analysing", "Progressing"),
    ]
    fields = {"phase": "Progressing"}

    metrics.observe(known, fields, status(history[:3]))
    metrics.observe(known, fields, status(history))
    metrics.observe(known, fields, status(history))  # asked again: nothing new

    labels = frozenset({("name", "web"), ("namespace", "shop")})
    shown = samples(registry)
    assert shown[("autopilot_canary_duration_seconds_count", labels)] == 1
    assert shown[("autopilot_canary_duration_seconds_sum", labels)] == 3
