"""The three ClusterIP Services of a canary: ``<apex>``, ``<apex>-primary``, ``<apex>-canary``.

``<apex>-primary`` selects the primary's pods and ``<apex>-canary`` the target's; the
VirtualService splits traffic between those two hosts. ``<apex>`` selects the primary's
pods too, so clients that bypass the mesh still reach the stable version. An existing
``<apex>`` Service (most users ship one) is taken over: its selector and ports are set and
it is annotated ``autopilot.dev/managed-by: canary``; remove it from Git so a GitOps tool
does not put the old selector back (docs/operators/canary.md says so).
"""

from __future__ import annotations

from typing import Any

from activities import kube
from activities.canary.objects import CANARY
from activities.canary.workloads import Selector
from models.canary import CanarySpec


def _service(
    name: str, namespace: str, selector: dict[str, str], spec: CanarySpec, workflow_id: str
) -> dict[str, Any]:
    port: dict[str, Any] = {
        "name": spec.service.port_name,
        "port": spec.service.port,
        "targetPort": spec.service.target_port or spec.service.port,
        "protocol": "TCP",
    }
    if spec.service.app_protocol:
        port["appProtocol"] = spec.service.app_protocol
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": CANARY.metadata(name, namespace, workflow_id),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": [port]},
    }


def desired_services(
    spec: CanarySpec, namespace: str, selector: Selector, workflow_id: str
) -> list[dict[str, Any]]:
    """The Services a canary needs, as they should be."""
    apex = spec.apex
    primary = {selector.key: selector.primary_value}
    canary = {selector.key: selector.value}
    return [
        _service(apex, namespace, primary, spec, workflow_id),
        _service(f"{apex}-primary", namespace, primary, spec, workflow_id),
        _service(f"{apex}-canary", namespace, canary, spec, workflow_id),
    ]


async def ensure(desired: dict[str, Any]) -> None:
    """Create the Service, or bring selector, ports and our annotations up to date."""
    api = kube.core()
    meta = desired["metadata"]

    def change(live: dict[str, Any]) -> bool:
        before = (
            live["spec"].get("selector"),
            _ports_key(live["spec"].get("ports")),
            CANARY.owns(live),
        )
        after = (desired["spec"]["selector"], _ports_key(desired["spec"]["ports"]), True)
        if before == after:
            return False
        live["spec"]["selector"] = desired["spec"]["selector"]
        live["spec"]["ports"] = desired["spec"]["ports"]
        annotations = live["metadata"].get("annotations") or {}
        annotations.update(meta["annotations"])
        live["metadata"]["annotations"] = annotations
        return True

    await kube.ensure(
        desired,
        lambda: CANARY.read_or_none(api.read_namespaced_service, meta["name"], meta["namespace"]),
        lambda obj: CANARY.call(
            api.create_namespaced_service,
            meta["namespace"],
            obj,
            field_manager=CANARY.field_manager,
        ),
        change,
        lambda live: CANARY.call(
            api.replace_namespaced_service,
            meta["name"],
            meta["namespace"],
            live,
            field_manager=CANARY.field_manager,
        ),
    )


def _ports_key(ports: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    return [
        (p.get("name"), p.get("port"), str(p.get("targetPort")), p.get("protocol", "TCP"))
        for p in ports or []
    ]


async def reconcile(spec: CanarySpec, namespace: str, selector: Selector, workflow_id: str) -> None:
    """Make sure all three Services exist and select the right pods."""
    for service in desired_services(spec, namespace, selector, workflow_id):
        await ensure(service)
