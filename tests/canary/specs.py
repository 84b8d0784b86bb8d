"""Canary specs for tests, written as users write them (YAML-shaped dicts)."""

from __future__ import annotations

import copy
from typing import Any

from models.canary import CanarySpec, load_canary_spec

#: The Flagger docs' Istio example, as a whole manifest.
FLAGGER_PODINFO = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    gateways:
    - public-gateway.istio-system.svc.cluster.local
    hosts:
    - app.example.com
    trafficPolicy:
      tls:
        mode: DISABLE
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,connect-failure,refused-stream"
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 30s
        metadata:
          type: bash
          cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token"
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
"""


def spec_dict(name: str = "podinfo", **analysis: Any) -> dict[str, Any]:
    """A minimal valid spec with ``analysis`` overrides (camelCase keys)."""
    base: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 9898},
        "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 10},
    }
    base["analysis"].update(copy.deepcopy(analysis))
    return base


def make_spec(name: str = "podinfo", **analysis: Any) -> CanarySpec:
    """:func:`spec_dict`, loaded."""
    return load_canary_spec(spec_dict(name, **analysis))
