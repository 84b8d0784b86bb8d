"""Run the real ``kube-apiserver`` on loopback, configured like a production control plane.

What makes it worth running instead of a fake: RBAC authorization, the default admission
chain, OpenAPI schema validation of CustomResources, optimistic concurrency (409 on a stale
``resourceVersion``), server-side apply, and bound ServiceAccount tokens. The controller
manager, the scheduler and kwok's fake nodes run beside it (:mod:`devcluster.controllers`);
no container ever runs. Hence ``--endpoint-reconciler-type=none``: there is no network for
the ``kubernetes`` Service endpoints to point into.

Every request made by a ServiceAccount is written to an audit log (JSON lines, level
Metadata: who, verb, resource, subresource, answer; never a body) in ``logs/audit.log``.
Only ServiceAccounts are audited, as that is who the operators run as in a least-privilege
test (:mod:`deploy.rbac_audit`); the admin's and the API server's own requests are not.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from devcluster.pki import Pki
from devcluster.process import ManagedProcess, http_ok, spawn, wait_until_ready

#: Seconds to wait for ``/readyz``; the first start also bootstraps RBAC roles in etcd.
STARTUP_TIMEOUT = 120.0

#: Issuer written into ServiceAccount tokens (the in-cluster name of the API server).
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


#: The audit policy: ServiceAccounts' requests at Metadata, once each (no RequestReceived
#: stage; a watch is logged when it starts and when it ends), everyone else's not at all.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


#: Addresses for Services. A session of tests creates three per canary; before the namespace
#: controller ran, deleted namespaces kept theirs and filled a /24 ("failed to allocate a
#: serviceIP: range is full"); a /16 holds 65,534, and deleted namespaces now free theirs.
SERVICE_CIDR = "10.0.0.0/16"
SERVICE_CIDR_FLAG = f"--service-cluster-ip-range={SERVICE_CIDR}"


def audit_log_path(state_dir: Path) -> Path:
    """Where the API server of a cluster in ``state_dir`` writes its audit log."""
    return state_dir / "logs" / "audit.log"


def server_url(port: int) -> str:
    """Return the HTTPS URL of an API server on ``port``."""
    return f"https://127.0.0.1:{port}"


def admin_ssl_context(pki: Pki) -> ssl.SSLContext:
    """Return a TLS context that trusts the dev CA and presents the admin certificate."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def ready(port: int, pki: Pki) -> bool:
    """Return whether the API server on ``port`` answers ``/readyz`` with 200."""
    return http_ok(f"{server_url(port)}/readyz", context=admin_ssl_context(pki))


def start_kube_apiserver(
    binary: Path, state_dir: Path, pki: Pki, *, port: int, etcd_url: str
) -> ManagedProcess:
    """Start ``kube-apiserver`` against ``etcd_url`` and wait until it is ready.

    Args:
        binary: The ``kube-apiserver`` executable.
        state_dir: Dev cluster state directory (logs and scratch certificates go there).
        pki: Certificates and keys from :func:`devcluster.pki.ensure_pki`.
        port: HTTPS port on 127.0.0.1.
        etcd_url: etcd client URL.

    Raises:
        StartupError: The API server exited or did not become ready in time.
    """
    cert_dir = state_dir / "apiserver"
    cert_dir.mkdir(parents=True, exist_ok=True)
    policy = cert_dir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    audit_log = audit_log_path(state_dir)
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        SERVICE_CIDR_FLAG,
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        f"--audit-policy-file={policy}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
        "--v=0",
    ]
    process = spawn("kube-apiserver", argv, state_dir / "logs" / "kube-apiserver.log")
    wait_until_ready(
        process, lambda: ready(port, pki), timeout=STARTUP_TIMEOUT, what="kube-apiserver"
    )
    return process
