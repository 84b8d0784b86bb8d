"""The pure parts of the senses' runtime: label selectors, shared PromQL, event IDs."""

from __future__ import annotations

import pytest

from models.promql import render_for_targets
from models.senses import KubeChange, WatchKind
from watchers.senses.kinds import event_id
from watchers.senses.selectors import LabelSelector, SelectorError
from watchers.webhooks.events import GenericEvent


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "api"}, False),
        ("app=web,tier!=db", {"app": "web", "tier": "db"}, False),
        ("app=web,tier!=db", {"app": "web"}, True),
        ("canary", {"canary": ""}, True),
        ("!canary", {"canary": "x"}, False),
        ("env in (prod, staging)", {"env": "staging"}, True),
        ("env notin (prod),app", {"env": "dev", "app": "x"}, True),
        ("env notin (prod),app", {"env": "prod", "app": "x"}, False),
    ],
)
def test_a_label_selector_matches_as_the_api_server_would(
    selector: str, labels: dict[str, str], matches: bool
) -> None:
    assert LabelSelector.parse(selector).matches(labels) is matches


def test_a_selector_the_api_server_would_refuse_is_refused_quoting_the_part() -> None:
    with pytest.raises(SelectorError, match="'a b c'"):
        LabelSelector.parse("app=web,a b c")


def test_one_query_serves_every_target_and_names_them_as_anchored_alternatives() -> None:
    query = render_for_targets(
        'up{ns=~"{{ namespace }}",name=~"{{ name }}"}',
        [("b", "web.v2"), ("a", "api"), ("a", "api")],
    )
    assert query == 'up{ns=~"a|b",name=~"api|web\\\\.v2"}'


def test_an_unknown_template_variable_is_named() -> None:
    with pytest.raises(KeyError, match="target"):
        render_for_targets('up{x="{{ target }}"}', [("a", "b")])


def _change(kind: str, version: str) -> KubeChange:
    meta = {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": version}
    return KubeChange(kind, {"metadata": meta})  # type: ignore[arg-type]


def test_a_relisted_unchanged_object_sends_the_same_event_id_and_a_deletion_its_own() -> None:
    sense = WatchKind("", "v1", "configmaps", map=lambda change: [], sends=())
    assert event_id(sense, _change("added", "7")) == event_id(sense, _change("modified", "7"))
    assert event_id(sense, _change("modified", "8")) != event_id(sense, _change("added", "7"))
    assert event_id(sense, _change("deleted", "9")).endswith(":deleted")


def test_the_generic_webhook_accepts_the_names_autopilot_new_operator_gives() -> None:
    event = GenericEvent(
        id="e1", operator="door_lock", namespace="shop", name="web", type="Changed"
    )
    assert event.operator == "door_lock"
