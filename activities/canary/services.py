"""The three ClusterIP Services of a canary: ``<apex>``, ``<apex>-primary``, ``<apex>-canary``.

``<apex>-primary`` selects the primary's pods and ``<apex>-canary`` the target's; the
VirtualService splits traffic between those two hosts. ``<apex>`` selects the primary's
pods too, so clients that bypass the mesh still reach the stable version. An existing
``<apex>`` Service (most users ship one) is taken over: its selector and ports are set and
it is annotated ``autopilot.dev/managed-by: canary``; remove it from Git so a GitOps tool
does not put the old selector back (docs/operators/canary.md says so).

``service.apex``, ``service.primary`` and ``service.canary`` (Flagger's custom metadata) add
labels and annotations to the matching Service, at creation and at every reconcile; our own
marks always win. A key removed from the spec stays on the Service (we do not record which
keys were the user's), as docs/operators/canary.md says.
"""

from __future__ import annotations

from typing import Any

from activities import kube
from activities.canary.objects import CANARY, OwnerReferences
from activities.canary.workloads import Selector
from activities.kube.owner import MANAGED_LABEL
from models.canary import CanarySpec, CustomMetadata


def _service(
    name: str,
    namespace: str,
    selector: dict[str, str],
    spec: CanarySpec,
    workflow_id: str,
    custom: CustomMetadata | None,
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
        "metadata": CANARY.metadata(
            name,
            namespace,
            workflow_id,
            labels=custom.labels if custom else None,
            annotations=custom.annotations if custom else None,
        ),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": [port]},
    }


def desired_services(
    spec: CanarySpec,
    namespace: str,
    selector: Selector,
    workflow_id: str,
    owners: OwnerReferences | None = None,
) -> list[dict[str, Any]]:
    """The Services a canary needs, as they should be (``owners``: for those created now;
    a Service taken over, or created earlier, keeps the ownerReferences it has)."""
    apex = spec.apex
    primary = {selector.key: selector.primary_value}
    canary = {selector.key: selector.value}
    service = spec.service
    services = [
        _service(apex, namespace, primary, spec, workflow_id, service.apex),
        _service(f"{apex}-primary", namespace, primary, spec, workflow_id, service.primary),
        _service(f"{apex}-canary", namespace, canary, spec, workflow_id, service.canary),
    ]
    if owners:
        for desired in services:
            desired["metadata"]["ownerReferences"] = owners
    return services


async def ensure(desired: dict[str, Any]) -> None:
    """Create the Service, or bring selector, ports, labels and annotations up to date.

    Labels and annotations are merged into the live ones (others' keys survive), so a
    reconcile that changes nothing writes nothing. A taken-over Service keeps its own
    ``app.kubernetes.io/managed-by`` label (Helm checks it); our annotation marks it ours.
    """
    api = kube.core()
    meta = desired["metadata"]

    def change(live: dict[str, Any]) -> bool:
        live_meta = live["metadata"]
        labels = live_meta.get("labels") or {}
        annotations = live_meta.get("annotations") or {}
        wanted = {k: v for k, v in meta["labels"].items() if k != MANAGED_LABEL or k not in labels}
        before = (
            live["spec"].get("selector"),
            _ports_key(live["spec"].get("ports")),
            wanted.items() <= labels.items(),
            meta["annotations"].items() <= annotations.items(),
        )
        after = (desired["spec"]["selector"], _ports_key(desired["spec"]["ports"]), True, True)
        if before == after:
            return False
        live["spec"]["selector"] = desired["spec"]["selector"]
        live["spec"]["ports"] = desired["spec"]["ports"]
        live_meta["labels"] = {**labels, **wanted}
        live_meta["annotations"] = {**annotations, **meta["annotations"]}
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


async def reconcile(
    spec: CanarySpec,
    namespace: str,
    selector: Selector,
    workflow_id: str,
    owners: OwnerReferences | None = None,
) -> None:
    """Make sure all three Services exist and select the right pods."""
    for service in desired_services(spec, namespace, selector, workflow_id, owners):
        await ensure(service)
