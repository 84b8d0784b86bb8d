"""Least privilege, measured: what the operators used (the audit log) against what RBAC grants.

A permission is one ``(verb, apiGroup, resource, subresource)``, written as ``kubectl auth
can-i`` reads it: ``patch deployments.apps/scale``, ``watch services`` (the core group has no
suffix). :func:`used_permissions` reads the API server's audit log (JSON lines) and keeps the
requests of one user; :func:`granted_permissions` expands the rules of a ClusterRole or Role
(a ``*`` stays a wildcard, which no request matches, so a wildcard is always an extra);
:func:`compare` says what is used but not granted (*missing*) and what is granted but neither
used nor justified (*extra*). A justification is a line of the role's
``autopilot.dev/unexercised`` annotation: ``VERB RESOURCE[.GROUP][/SUBRESOURCE]: why``, for a
permission a feature needs that the end-to-end run does not exercise; a justification no rule
grants is *stale*, and fails the check as an extra does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: The annotation of a role that lists (and justifies) the permissions no test exercises.
UNEXERCISED_ANNOTATION = "autopilot.dev/unexercised"


class Permission(NamedTuple):
    """One thing RBAC decides: a verb on a resource (and subresource) of an API group."""

    verb: str
    group: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        name = f"{self.resource}.{self.group}" if self.group else self.resource
        return (
            f"{self.verb} {name}/{self.subresource}" if self.subresource else f"{self.verb} {name}"
        )

    @classmethod
    def parse(cls, text: str) -> Permission:
        """``"patch deployments.apps/scale"`` -> ``Permission("patch", "apps", ...)``."""
        verb, _, name = text.strip().partition(" ")
        if not verb or not name.strip():
            raise ValueError(f"a permission is 'VERB RESOURCE[.GROUP][/SUBRESOURCE]', not {text!r}")
        name, _, subresource = name.strip().partition("/")
        resource, _, group = name.partition(".")
        return cls(verb, group, resource, subresource)


@dataclass(frozen=True)
class Usage:
    """What one user asked of the API server, from its audit log.

    Attributes:
        permissions: Every permission a request needed, with how many requests needed it.
        denied: The permissions RBAC refused at least once (a missing rule, as the server saw).
        non_resource: Non-resource paths asked for (``/version``, ``/apis``; granted to every
            authenticated user by ``system:discovery``, so not the role's to grant).
    """

    permissions: dict[Permission, int] = field(default_factory=dict)
    denied: frozenset[Permission] = frozenset()
    non_resource: frozenset[str] = frozenset()

    @property
    def used(self) -> frozenset[Permission]:
        return frozenset(self.permissions)


def used_permissions(lines: Iterable[str], username: str) -> Usage:
    """The permissions ``username``'s requests needed, from audit log lines (JSON each).

    Each request counts once: a long request (a watch) is logged when it starts and when it
    ends, so only the first event of an ``auditID`` is kept.
    """
    counts: dict[Permission, int] = {}
    denied: set[Permission] = set()
    paths: set[str] = set()
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        event: dict[str, Any] = json.loads(line)
        if event.get("user", {}).get("username") != username:
            continue
        audit_id = str(event.get("auditID", ""))
        if audit_id in seen:
            continue
        seen.add(audit_id)
        ref = event.get("objectRef")
        if ref is None:
            paths.add(str(event.get("requestURI", "")).split("?")[0])
            continue
        permission = Permission(
            str(event["verb"]),
            str(ref.get("apiGroup", "")),
            str(ref["resource"]),
            str(ref.get("subresource", "")),
        )
        counts[permission] = counts.get(permission, 0) + 1
        decision = event.get("annotations", {}).get("authorization.k8s.io/decision")
        if decision == "forbid":
            denied.add(permission)
    return Usage(counts, frozenset(denied), frozenset(paths))


def granted_permissions(role: Mapping[str, Any]) -> frozenset[Permission]:
    """Every permission the rules of ``role`` (a ClusterRole or Role) grant, expanded.

    A rule limited to ``resourceNames`` is refused: the check works on whole resources, and a
    rule granting fewer names than it appears to would be counted as more than it is.
    """
    granted: set[Permission] = set()
    for rule in role.get("rules") or []:
        if rule.get("nonResourceURLs"):
            continue
        if rule.get("resourceNames"):
            raise ValueError(f"rule {rule} names resources: the least-privilege check cannot")
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                name, _, subresource = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    granted.add(Permission(verb, group, name, subresource))
    return frozenset(granted)


def unexercised(role: Mapping[str, Any]) -> dict[Permission, str]:
    """The permissions ``role`` grants on purpose though no test uses them, with the reason."""
    text = ((role.get("metadata") or {}).get("annotations") or {}).get(UNEXERCISED_ANNOTATION)
    justified: dict[Permission, str] = {}
    for line in str(text or "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        permission, separator, reason = line.partition(":")
        if not separator or not reason.strip():
            raise ValueError(f"{UNEXERCISED_ANNOTATION}: {line.strip()!r} gives no reason")
        justified[Permission.parse(permission)] = reason.strip()
    return justified


@dataclass(frozen=True)
class Comparison:
    """Used against granted.

    Attributes:
        missing: Used but not granted: the operators need a rule the role lacks.
        extra: Granted, not used, not justified: a rule the role should drop (or justify).
        justified: Granted, not used, and justified in the role's annotation.
        stale: Justifications of permissions no rule grants (a rule was dropped, the line
            stayed).
        exercised: Justified permissions this run used after all (not an error: a run may
            take a path, such as a retry after a conflict, that another does not).
    """

    missing: frozenset[Permission]
    extra: frozenset[Permission]
    justified: frozenset[Permission]
    stale: frozenset[Permission]
    exercised: frozenset[Permission] = frozenset()

    @property
    def exact(self) -> bool:
        """Whether the role grants what is used, plus what it justifies, and nothing else."""
        return not (self.missing or self.extra or self.stale)

    def explain(self) -> str:
        """One line per difference, naming the verb and the resource."""
        lines = [f"missing (used, not granted): {p}" for p in sorted(self.missing, key=str)]
        lines += [
            f"extra (granted, never used, not justified): {p}" for p in sorted(self.extra, key=str)
        ]
        lines += [
            f"stale justification (no rule grants it): {p}" for p in sorted(self.stale, key=str)
        ]
        return "\n".join(lines)


def compare(
    used: Iterable[Permission],
    granted: Iterable[Permission],
    justified: Iterable[Permission] = (),
) -> Comparison:
    """Compare what was used with what is granted, allowing the justified extras."""
    used_set, granted_set, justified_set = set(used), set(granted), set(justified)
    unused = granted_set - used_set
    return Comparison(
        missing=frozenset(used_set - granted_set),
        extra=frozenset(unused - justified_set),
        justified=frozenset(unused & justified_set),
        stale=frozenset(justified_set - granted_set),
        exercised=frozenset(justified_set & used_set & granted_set),
    )
