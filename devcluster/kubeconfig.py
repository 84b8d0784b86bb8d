"""Kubeconfigs for the dev cluster: the admin's, and one per ServiceAccount on demand.

The admin kubeconfig embeds its certificates, so it can be copied or exported as
``KUBECONFIG`` and works for ``kubectl`` and the Python client alike. To test RBAC, a test
acts as a ServiceAccount exactly as a pod would: it asks the TokenRequest API for a bound
token and presents it as a bearer token. Nothing here bypasses the API server's checks.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from devcluster.pki import Pki

#: Name of the cluster, user and context in generated kubeconfigs.
CONTEXT_NAME = "autopilot-dev"


def admin_kubeconfig(server: str, pki: Pki) -> dict[str, Any]:
    """Return an admin kubeconfig (client certificate in ``system:masters``) as a dict."""
    return _kubeconfig(
        server,
        pki.ca_cert.read_bytes(),
        user_name="autopilot-admin",
        user={
            "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
            "client-key-data": _b64(pki.admin_key.read_bytes()),
        },
    )


def write_kubeconfig(path: Path, kubeconfig: dict[str, Any]) -> Path:
    """Write ``kubeconfig`` as YAML readable only by the owner, and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    partial.chmod(0o600)
    partial.replace(path)
    return path


def api_client_from_kubeconfig(kubeconfig: dict[str, Any] | Path) -> client.ApiClient:
    """Return a Kubernetes ``ApiClient`` for a kubeconfig dict or file."""
    if isinstance(kubeconfig, Path):
        return config.new_client_from_config(config_file=str(kubeconfig))
    return config.new_client_from_config_dict(config_dict=kubeconfig)


@dataclass(frozen=True)
class ServiceAccountIdentity:
    """Credentials to act as a ServiceAccount.

    Attributes:
        namespace: ServiceAccount namespace.
        name: ServiceAccount name.
        token: Bound token from the TokenRequest API.
        kubeconfig: Kubeconfig that authenticates with ``token``.
    """

    namespace: str
    name: str
    token: str
    kubeconfig: dict[str, Any]

    @property
    def username(self) -> str:
        """The user name the API server sees, as used by ``kubectl auth can-i --as``."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def api_client(self) -> client.ApiClient:
        """Return an ``ApiClient`` that acts as this ServiceAccount."""
        return api_client_from_kubeconfig(self.kubeconfig)

    def write(self, path: Path) -> Path:
        """Write this identity's kubeconfig to ``path`` (e.g. for ``kubectl``)."""
        return write_kubeconfig(path, self.kubeconfig)


def service_account_identity(
    admin: client.ApiClient,
    namespace: str,
    name: str,
    *,
    create: bool = True,
    expiration_seconds: int = 3600,
) -> ServiceAccountIdentity:
    """Return credentials to act as ServiceAccount ``namespace/name``.

    Args:
        admin: Client allowed to create ServiceAccounts and tokens (e.g. the admin's).
        namespace: Namespace of the ServiceAccount.
        name: ServiceAccount name.
        create: Create the ServiceAccount when it does not exist.
        expiration_seconds: Requested token lifetime (the API server's minimum is 600).
    """
    core = client.CoreV1Api(admin)
    if create:
        try:
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            )
        except client.ApiException as error:
            if error.status != 409:
                raise
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(expiration_seconds=expiration_seconds)
    )
    response = core.create_namespaced_service_account_token(
        name, namespace, request, _preload_content=False
    )
    # With _preload_content=False the client returns the raw HTTP response, not the model.
    raw: Any = response
    token = str(json.loads(raw.data)["status"]["token"])
    configuration = admin.configuration
    ca_file = configuration.ssl_ca_cert
    ca_data = Path(ca_file).read_bytes() if ca_file else b""
    kubeconfig = _kubeconfig(
        str(configuration.host),
        ca_data,
        user_name=f"{namespace}-{name}",
        user={"token": token},
        namespace=namespace,
    )
    return ServiceAccountIdentity(
        namespace=namespace, name=name, token=token, kubeconfig=kubeconfig
    )


def _kubeconfig(
    server: str,
    ca_pem: bytes,
    *,
    user_name: str,
    user: dict[str, str],
    namespace: str = "default",
) -> dict[str, Any]:
    cluster: dict[str, str] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = _b64(ca_pem)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {
                "name": CONTEXT_NAME,
                "context": {"cluster": CONTEXT_NAME, "user": user_name, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT_NAME,
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
