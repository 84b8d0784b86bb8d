"""A SIMULATED data plane for the dev cluster: Envoy sidecars and their traffic, played in Python.

The dev cluster has a real control plane, real Istio CRDs, a real Prometheus and kwok's fake
nodes, but no container and no Envoy. This package fills that gap for tests and demos: it
exports Istio's standard request metrics that follow the live VirtualService weights,
DestinationRule subsets and AuthorizationPolicies. Nothing here is a real proxy; every metric
family says so through ``autopilot_sim_info``. See ``docs/dataplane-sim.md``.

Run it with ``python -m devcluster.dataplane_sim --kubeconfig K --metrics-port P`` or in
process::

    with DataPlaneSimulator.from_kubeconfig(path, SimConfig(namespace="demo")) as sim:
        ...  # sim.metrics_url is scraped by Prometheus
"""

from devcluster.dataplane_sim.annotations import ANNOTATIONS
from devcluster.dataplane_sim.simulator import DataPlaneSimulator, SimConfig, TickReport

__all__ = ["ANNOTATIONS", "DataPlaneSimulator", "SimConfig", "TickReport"]
