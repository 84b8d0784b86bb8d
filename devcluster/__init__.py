"""The local cluster: real kube-apiserver, etcd, Istio CRDs, Prometheus and Temporal.

Entry point: :class:`devcluster.cluster.DevCluster` (``autopilot dev`` is its CLI). Nothing is
imported here so that ``python -m devcluster.dataplane_sim`` and the build stay light.
See docs/dev-cluster.md.
"""
