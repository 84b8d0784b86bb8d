"""The least-privilege check on a real audit sample: it names the verb a removed rule
leaves without a grant, and the verb an unneeded rule adds.

``audit_sample.jsonl`` is one event per permission the operators used in the end-to-end run
(``AUTOPILOT_RECORD_AUDIT_SAMPLE=1 pytest tests/security/test_least_privilege_e2e.py``
records it again), as the API server wrote it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from deploy.rbac_audit import (
    Permission,
    compare,
    granted_permissions,
    unexercised,
    used_permissions,
)
from tests.security.install import NAMESPACED_RBAC, operators_role
from tests.security.test_least_privilege_e2e import SAMPLE

OPERATORS = "system:serviceaccount:autopilot-system:autopilot"


def sample() -> list[str]:
    return SAMPLE.read_text().splitlines()


def check(role: dict[str, Any]) -> str:
    """What the check says of ``role`` against the sample ('' when it grants exactly that)."""
    used = used_permissions(sample(), OPERATORS).used
    return compare(used, granted_permissions(role), unexercised(role)).explain()


def without_verb(role: dict[str, Any], resource: str, verb: str) -> dict[str, Any]:
    changed = copy.deepcopy(role)
    for rule in changed["rules"]:
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"].remove(verb)
    return changed


def test_the_shipped_cluster_role_grants_exactly_what_the_sample_used_plus_the_justified() -> None:
    assert check(operators_role()) == ""


def test_removing_a_needed_rule_fails_naming_the_verb_and_the_resource() -> None:
    role = without_verb(operators_role(), "deployments/scale", "patch")

    assert check(role) == "missing (used, not granted): patch deployments.apps/scale"


def test_adding_an_unneeded_rule_fails_naming_each_verb_it_adds() -> None:
    role = copy.deepcopy(operators_role())
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]})

    assert check(role).splitlines() == [
        "extra (granted, never used, not justified): get secrets",
        "extra (granted, never used, not justified): list secrets",
    ]


def test_a_wildcard_is_always_an_extra() -> None:
    role = copy.deepcopy(operators_role())
    role["rules"].append({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]})

    assert check(role) == "extra (granted, never used, not justified): * deployments.apps"


def test_a_justification_whose_rule_was_dropped_is_stale() -> None:
    role = without_verb(operators_role(), "httproutes", "update")

    assert check(role) == (
        "stale justification (no rule grants it): update httproutes.gateway.networking.k8s.io"
    )


def test_a_justification_without_a_reason_is_refused() -> None:
    role = copy.deepcopy(operators_role())
    role["metadata"]["annotations"]["autopilot.dev/unexercised"] = "get secrets\n"

    with pytest.raises(ValueError, match="'get secrets' gives no reason"):
        unexercised(role)


def test_a_watch_is_counted_once_though_it_is_logged_when_it_starts_and_when_it_ends() -> None:
    [watch] = [line for line in sample() if json.loads(line)["verb"] == "watch"][:1]
    started = json.loads(watch) | {"stage": "ResponseStarted"}
    ended = json.loads(watch) | {"stage": "ResponseComplete"}

    usage = used_permissions([json.dumps(started), json.dumps(ended)], OPERATORS)

    assert list(usage.permissions.values()) == [1]


def test_a_request_rbac_refused_is_used_and_denied() -> None:
    event = json.loads(sample()[0])
    event["annotations"]["authorization.k8s.io/decision"] = "forbid"

    usage = used_permissions([json.dumps(event)], OPERATORS)

    assert usage.denied == usage.used == {Permission("create", "", "configmaps")}


def test_other_users_requests_are_not_counted() -> None:
    assert used_permissions(sample(), "system:serviceaccount:shop:default").used == set()


def test_permissions_read_as_kubectl_auth_can_i_writes_them() -> None:
    for text in ("patch deployments.apps/scale", "watch services", "get canaries.autopilot.dev"):
        assert str(Permission.parse(text)) == text
    assert Permission.parse("update approvals.autopilot.dev/status") == Permission(
        "update", "autopilot.dev", "approvals", "status"
    )


@pytest.mark.skipif(not NAMESPACED_RBAC.exists(), reason="no namespaced install")
def test_the_namespaced_role_grants_what_the_cluster_role_does() -> None:
    namespaced = operators_role(NAMESPACED_RBAC)

    assert namespaced["kind"] == "Role"
    assert granted_permissions(namespaced) == granted_permissions(operators_role())
    assert unexercised(namespaced) == unexercised(operators_role())
