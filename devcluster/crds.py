"""Install Istio's real CustomResourceDefinitions and wait until the API server serves them.

The CRDs come from the pinned ``istio.io/api`` Go module (fetched through the Go module proxy
into Go's module cache), not from a copy in this repository: their OpenAPI schemas are what
make the API server reject a malformed VirtualService exactly as a real Istio cluster would.
They are applied server-side (no ``last-applied`` annotation, which would not fit the
VirtualService schema's size) and the install is idempotent.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.build import BuildError, find_go
from devcluster.versions import ISTIO_API_VERSION, ISTIO_CRD_FILE

#: Field manager recorded on the CRDs we apply.
FIELD_MANAGER = "autopilot-dev"

#: Seconds to wait for every CRD to become Established.
ESTABLISH_TIMEOUT = 60.0


class CrdError(RuntimeError):
    """CRDs (Istio's, Flux's or Autopilot's) could not be fetched or installed."""


def istio_crd_file() -> Path:
    """Return the CRD bundle of the pinned ``istio.io/api`` module, downloading it if needed.

    Raises:
        CrdError: Go is missing or the module could not be downloaded.
    """
    module = f"istio.io/api@{ISTIO_API_VERSION}"
    path = module_dir(module) / ISTIO_CRD_FILE
    if not path.is_file():
        raise CrdError(f"{module} has no {ISTIO_CRD_FILE}")
    return path


def module_dir(module: str) -> Path:
    """Return the directory of Go module ``path@version`` in Go's module cache, downloading it.

    Raises:
        CrdError: Go is missing or the module could not be downloaded.
    """
    try:
        go = find_go()
    except BuildError as error:
        raise CrdError(f"cannot fetch {module}: {error}") from error
    result = subprocess.run(
        [go, "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or result.stderr.strip() or "no output"
        raise CrdError(f"'go mod download {module}' failed: {detail}")
    return Path(info["Dir"])


def load_crds(path: Path) -> list[dict[str, Any]]:
    """Return the CustomResourceDefinitions in a multi-document YAML file."""
    # The bundle is about 1 MB: the C loader parses it ten times faster when available.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as stream:
        documents = list(yaml.load_all(stream, Loader=loader))
    return [
        doc
        for doc in documents
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


def install_istio_crds(api: client.ApiClient) -> list[str]:
    """Apply Istio's CRDs and wait until each is Established.

    Returns:
        Names of the installed CRDs.

    Raises:
        CrdError: The CRDs could not be fetched, applied, or did not become Established.
    """
    names = apply_crds(api, load_crds(istio_crd_file()))
    return names + install_autopilot_crds(api)


def expected_crd_names() -> list[str]:
    """Return the names of the CRDs in the pinned bundle (reads the module cache)."""
    return [str(crd["metadata"]["name"]) for crd in load_crds(istio_crd_file())]


def not_established(api: client.ApiClient, names: list[str]) -> list[str]:
    """Return which of ``names`` are not yet Established (empty when all are)."""
    response = client.ApiextensionsV1Api(api).list_custom_resource_definition(
        _preload_content=False
    )
    # With _preload_content=False the client returns the raw HTTP response, not the model.
    raw: Any = response
    items = json.loads(raw.data).get("items", [])
    ready = {
        item["metadata"]["name"]
        for item in items
        if any(
            condition.get("type") == "Established" and condition.get("status") == "True"
            for condition in (item.get("status") or {}).get("conditions") or []
        )
    }
    return [name for name in names if name not in ready]


def wait_established(
    api: client.ApiClient, names: list[str], timeout: float = ESTABLISH_TIMEOUT
) -> None:
    """Wait until every CRD in ``names`` is Established.

    Raises:
        CrdError: Some CRDs were not Established after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while pending := not_established(api, names):
        if time.monotonic() > deadline:
            raise CrdError(f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.1)


# =============================================================================
# Autopilot's own CRDs (deploy/crds/*.yaml), applied after Istio's
# =============================================================================

#: Generated by ``deploy/generate_crds.py``; one CRD per file.
AUTOPILOT_CRD_DIR = Path(__file__).resolve().parents[1] / "deploy" / "crds"


def install_autopilot_crds(api: client.ApiClient, directory: Path = AUTOPILOT_CRD_DIR) -> list[str]:
    """Apply Autopilot's CRDs (the ``Canary``) server-side and wait until they are Established.

    Returns:
        Names of the installed CRDs (none when the directory does not exist).

    Raises:
        CrdError: A CRD could not be applied or did not become Established.
    """
    crds = [crd for path in sorted(directory.glob("*.yaml")) for crd in load_crds(path)]
    names = apply_crds(api, crds)
    install_admission_policies(api)
    return names


#: The admission policies that stamp an Approval's requester (``deploy/approvals.py``).
AUTOPILOT_POLICIES = AUTOPILOT_CRD_DIR.parent / "kubernetes" / "approval-policies.yaml"

#: Resource of each admission kind we apply (all ``admissionregistration.k8s.io/v1``).
_ADMISSION_PLURALS = {
    "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
    "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}


def install_admission_policies(api: client.ApiClient, path: Path = AUTOPILOT_POLICIES) -> None:
    """Server-side apply the Approval's admission policies and bindings (cluster-scoped).

    Raises:
        CrdError: The API server refused one of them.
    """
    if not path.exists():
        return
    for policy in yaml.safe_load_all(path.read_text()):
        if not isinstance(policy, dict):
            continue
        plural = _ADMISSION_PLURALS[policy["kind"]]
        name = policy["metadata"]["name"]
        try:
            # any cluster-scoped resource has the custom-object path shape
            client.CustomObjectsApi(api).patch_cluster_custom_object(
                "admissionregistration.k8s.io",
                "v1",
                plural,
                name,
                policy,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except client.ApiException as error:
            raise CrdError(f"applying {policy['kind']} {name} failed: {error.status}") from error


def apply_crds(api: client.ApiClient, crds: list[dict[str, Any]]) -> list[str]:
    """Server-side apply each CRD, then wait until all are Established; return their names.

    Raises:
        CrdError: A CRD could not be applied or did not become Established.
    """
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for crd in crds:
        name = str(crd["metadata"]["name"])
        try:
            extensions.patch_custom_resource_definition(
                name,
                crd,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
                _preload_content=False,
            )
        except client.ApiException as error:
            raise CrdError(f"applying CRD {name} failed: {error.status} {error.reason}") from error
        names.append(name)
    wait_established(api, names)
    return names
