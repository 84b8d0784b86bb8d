"""Istio AuthorizationPolicy evaluation for synthetic requests.

Why: the quarantine operator isolates a workload by writing an AuthorizationPolicy, and the
only way to see that it worked is that requests to the workload start failing with 403. This
module decides, per workload and request, what the destination sidecar would decide.

Istio's order is followed: CUSTOM (not simulated, ignored), then DENY (any matching rule
denies), then ALLOW (if any ALLOW policy selects the workload, some rule must match).
A policy with no ``rules`` never matches, so an ALLOW policy without rules denies everything
and a DENY policy without rules denies nothing. Policies in the root namespace apply to every
workload in the mesh. Policies with ``targetRef``/``targetRefs`` attach to gateways or
waypoints, which are not simulated, and are ignored.

The synthetic request carries a mTLS peer identity (``source.principal``, ``source.namespace``)
but no JWT, no client IP and no headers: conditions on those never match, their ``not``
forms always do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from devcluster.dataplane_sim.routing import SyntheticRequest, labels_match, object_key

#: Istio's default root namespace: its policies apply mesh-wide.
DEFAULT_ROOT_NAMESPACE: Final = "istio-system"

JsonObject = Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The verdict for one workload and request.

    Attributes:
        allowed: Whether the request reaches the workload.
        policy: ``namespace/name`` of the policy that denied it, or ``None``.
    """

    allowed: bool
    policy: str | None = None


@dataclass(frozen=True)
class RequestAttributes:
    """Request attributes a policy can test, beyond those of :class:`SyntheticRequest`.

    Attributes:
        request: The synthetic request (path, method, source identity).
        host: Host header (the destination Service FQDN).
        port: Destination port, or ``None`` when unknown.
    """

    request: SyntheticRequest
    host: str
    port: int | None = None


def istio_string_match(pattern: str, value: str | None) -> bool:
    """Match like Istio's policy strings: exact, ``prefix*``, ``*suffix`` or ``*``."""
    if value is None:
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _field(
    spec: JsonObject, positive: str, negative: str, value: str | None, *, case: bool = True
) -> bool:
    """Check ``positive`` (value must match one) and ``negative`` (must match none) lists."""
    subject = value if case or value is None else value.lower()

    def norm(pattern: Any) -> str:
        return str(pattern) if case else str(pattern).lower()

    if positive in spec and not any(istio_string_match(norm(p), subject) for p in spec[positive]):
        return False
    return not (
        negative in spec and any(istio_string_match(norm(p), subject) for p in spec[negative])
    )


def _source_matches(source: JsonObject, attrs: RequestAttributes) -> bool:
    request = attrs.request
    service_account = None
    if request.source_principal.count("/") == 4:  # cluster.local/ns/<ns>/sa/<sa>
        parts = request.source_principal.split("/")
        service_account = f"{parts[2]}/{parts[4]}"
    return (
        _field(source, "principals", "notPrincipals", request.source_principal)
        and _field(source, "namespaces", "notNamespaces", request.source_namespace)
        and _field(source, "serviceAccounts", "notServiceAccounts", service_account)
        and _field(source, "requestPrincipals", "notRequestPrincipals", None)
        and _field(source, "ipBlocks", "notIpBlocks", None)
        and _field(source, "remoteIpBlocks", "notRemoteIpBlocks", None)
    )


def _operation_matches(operation: JsonObject, attrs: RequestAttributes) -> bool:
    port = str(attrs.port) if attrs.port is not None else None
    return (
        _field(operation, "hosts", "notHosts", attrs.host, case=False)
        and _field(operation, "ports", "notPorts", port)
        and _field(operation, "methods", "notMethods", attrs.request.method)
        and _field(operation, "paths", "notPaths", attrs.request.path)
    )


def _condition_value(key: str, attrs: RequestAttributes) -> str | None:
    request = attrs.request
    known = {
        "source.principal": request.source_principal,
        "source.namespace": request.source_namespace,
        "request.method": request.method,
        "destination.port": str(attrs.port) if attrs.port is not None else None,
    }
    return known.get(key)


def _rule_matches(rule: JsonObject, attrs: RequestAttributes) -> bool:
    sources = rule.get("from")
    if sources and not any(_source_matches(s.get("source") or {}, attrs) for s in sources):
        return False
    operations = rule.get("to")
    if operations and not any(
        _operation_matches(o.get("operation") or {}, attrs) for o in operations
    ):
        return False
    for condition in rule.get("when") or []:
        value = _condition_value(str(condition.get("key", "")), attrs)
        if not _field(condition, "values", "notValues", value):
            return False
    return True


def policy_applies(
    policy: JsonObject,
    workload_namespace: str,
    workload_labels: Mapping[str, str],
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
) -> bool:
    """Whether a policy selects a workload (namespace or root namespace, and selector)."""
    namespace, _ = object_key(policy)
    if namespace not in (workload_namespace, root_namespace):
        return False
    spec = policy.get("spec") or {}
    if spec.get("targetRef") or spec.get("targetRefs"):
        return False
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return labels_match(selector, workload_labels)


def _matches(policy: JsonObject, attrs: RequestAttributes) -> bool:
    rules: Sequence[JsonObject] = (policy.get("spec") or {}).get("rules") or []
    return any(_rule_matches(rule or {}, attrs) for rule in rules)


def decide(
    policies: Sequence[JsonObject],
    workload_namespace: str,
    workload_labels: Mapping[str, str],
    attrs: RequestAttributes,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
) -> Decision:
    """Decide whether the destination sidecar lets a request through.

    Args:
        policies: Candidate AuthorizationPolicies (any namespace; filtered here).
        workload_namespace: Namespace of the destination workload.
        workload_labels: Pod labels of the destination workload.
        attrs: The request.
        root_namespace: Istio's root namespace.

    Returns:
        The decision, naming the policy responsible for a denial.
    """
    applicable = [
        p
        for p in policies
        if policy_applies(p, workload_namespace, workload_labels, root_namespace)
    ]
    allow_policies = []
    for policy in applicable:
        action = str((policy.get("spec") or {}).get("action") or "ALLOW").upper()
        if action == "DENY" and _matches(policy, attrs):
            return Decision(False, "/".join(object_key(policy)))
        if action == "ALLOW":
            allow_policies.append(policy)
    if allow_policies and not any(_matches(p, attrs) for p in allow_policies):
        return Decision(False, "/".join(object_key(allow_policies[0])))
    return Decision(True)
