"""Autopilot installs the way operators are installed, and a real API server accepts it.

``deploy/kubernetes/`` is a kustomize base (``kubectl apply -k``), ``deploy/examples/overlay/``
plugs a user's operators into it, and ``deploy/helm/autopilot/`` is a Helm chart that renders
the same objects. kubectl (with its built-in kustomize) and Helm are the real tools: Helm is
built from its Go module and cached like kube-apiserver (``autopilot dev build``). The first
tests need no cluster and start none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from deploy.rbac_audit import unexercised
from devcluster.build import ensure_helm
from tests.fixtures.cluster import fresh_namespace

DEPLOY = Path(__file__).parent.parent / "deploy"
BASE = DEPLOY / "kubernetes"
CRDS = DEPLOY / "crds"
CHART = DEPLOY / "helm" / "autopilot"
OVERLAY = DEPLOY / "examples" / "overlay"
NAMESPACED_RBAC = BASE / "namespaced" / "rbac.yaml"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
SA = "system:serviceaccount:autopilot-system:autopilot"

#: Objects in the base that the chart leaves to Helm: ``--create-namespace`` makes it.
ONLY_IN_THE_BASE = {("Namespace", "", "autopilot-system")}

#: Values that set everything the chart offers, as an operator of Temporal Cloud would.
EVERY_VALUE: dict[str, Any] = {
    "image": {"repository": "example.com/platform/autopilot-acme", "tag": "1.4.0"},
    "temporal": {
        "address": "acme.a1b2c.tmprl.cloud:7233",
        "namespace": "acme.a1b2c",
        "tls": True,
        "apiKeySecret": {"name": "temporal-cloud", "key": "token"},
    },
    "watchedNamespaces": ["shop", "pay"],
    "operatorModules": ["acme_operators.quota", "acme_operators.dns"],
    "worker": {"replicas": 3, "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}}},
    "watchers": {"replicas": 1, "resources": {"limits": {"memory": "256Mi"}}},
}

Key = tuple[str, str, str]
Helm = Callable[..., subprocess.CompletedProcess[str]]


def kubectl(
    kubeconfig: Path | None, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Run the pinned ``helm`` (built once, then cached) with its own empty config and cache."""
    binary = ensure_helm()
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(
        os.environ,
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args], capture_output=True, text=True, env=env, timeout=120
        )

    return run


def render_chart(helm: Helm, namespace: str, values: Path | None = None) -> str:
    """``helm template`` of the chart with its CRDs, as ``helm install`` would apply it."""
    extra = ["--values", str(values)] if values else []
    rendered = helm(
        "template", "autopilot", str(CHART), "--namespace", namespace, "--include-crds", *extra
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def kustomize(directory: Path) -> str:
    built = kubectl(None, "kustomize", str(directory))
    assert built.returncode == 0, built.stderr
    return built.stdout


def by_key(manifests: str) -> dict[Key, dict[str, Any]]:
    """The objects of a multi-document YAML by (kind, namespace, name)."""
    found = {}
    for document in yaml.safe_load_all(manifests):
        if document:
            meta = document["metadata"]
            found[(document["kind"], meta.get("namespace", ""), meta["name"])] = document
    return found


def without_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """Everything that makes the object behave: all but labels and annotations of its own.

    Pod templates, selectors, rules and subjects are kept; only the object's own labels
    (Helm adds ``managed-by``, ``instance`` and ``helm.sh/chart``) are left out.
    """
    kept = {key: value for key, value in manifest.items() if key != "metadata"}
    kept["metadata"] = {
        key: manifest["metadata"][key]
        for key in ("name", "namespace")
        if key in manifest["metadata"]
    }
    return kept


def env_of(manifests: dict[Key, dict[str, Any]], namespace: str, name: str) -> dict[str, Any]:
    """The container environment of a Deployment: values, or ``valueFrom`` for references."""
    [container] = manifests[("Deployment", namespace, name)]["spec"]["template"]["spec"][
        "containers"
    ]
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


# --- without a cluster --------------------------------------------------------------------


def test_every_crd_is_in_the_kustomize_base_and_in_the_chart() -> None:
    generated = sorted(path.name for path in CRDS.glob("*.yaml") if path.stem != "kustomization")
    listed = yaml.safe_load((CRDS / "kustomization.yaml").read_text())["resources"]
    in_chart = sorted(path.name for path in (CHART / "crds").glob("*.yaml"))

    assert sorted(listed) == generated, "list every CRD in deploy/crds/kustomization.yaml"
    assert in_chart == generated, "link every CRD into deploy/helm/autopilot/crds/"
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (CRDS / name).read_text(), name


def test_helm_lint_passes_on_the_chart_with_warnings_as_errors(helm: Helm) -> None:
    linted = helm("lint", "--strict", str(CHART))

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in linted.stdout


def test_the_chart_with_default_values_renders_the_objects_of_the_kustomize_base(
    helm: Helm,
) -> None:
    chart = by_key(render_chart(helm, "autopilot-system"))
    base = by_key(kustomize(BASE))

    assert set(base) - set(chart) == ONLY_IN_THE_BASE
    assert set(chart) <= set(base)
    for key in chart:
        assert without_metadata(chart[key]) == without_metadata(base[key]), key


def test_the_values_an_operator_sets_reach_the_worker_and_the_watchers(
    helm: Helm, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(EVERY_VALUE))
    chart = by_key(render_chart(helm, "platform", values))
    worker = env_of(chart, "platform", "autopilot-worker")
    watchers = env_of(chart, "platform", "autopilot-watchers")
    deployment = chart[("Deployment", "platform", "autopilot-worker")]
    api_key = {"secretKeyRef": {"name": "temporal-cloud", "key": "token"}}

    for env in (worker, watchers):
        assert env["TEMPORAL_ADDRESS"] == "acme.a1b2c.tmprl.cloud:7233"
        assert env["AUTOPILOT_TEMPORAL_NAMESPACE"] == "acme.a1b2c"
        assert env["AUTOPILOT_TEMPORAL_TLS"] == "true"
        assert env["AUTOPILOT_TEMPORAL_API_KEY"] == api_key  # from the Secret, never a value
    assert worker["AUTOPILOT_OPERATOR_MODULES"] == "acme_operators.quota,acme_operators.dns"
    assert "AUTOPILOT_OPERATOR_MODULES" not in watchers
    assert watchers["AUTOPILOT_WATCH_NAMESPACES"] == '["shop","pay"]'  # JSON, as settings read
    assert deployment["spec"]["replicas"] == 3
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "example.com/platform/autopilot-acme:1.4.0"
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "512Mi"}
    subjects = chart[("ClusterRoleBinding", "", "autopilot")]["subjects"]
    assert subjects == [{"kind": "ServiceAccount", "name": "autopilot", "namespace": "platform"}]


def test_a_value_the_chart_refuses_is_named_with_what_it_should_be(helm: Helm) -> None:
    refused = helm(
        "template",
        "autopilot",
        str(CHART),
        "--set",
        "worker.replicas=-1",
        "--set",
        "temporal.address=temporal-without-port",
    )

    assert refused.returncode != 0
    assert "/worker/replicas" in refused.stderr and "minimum" in refused.stderr
    assert "/temporal/address" in refused.stderr


def test_the_chart_justifies_the_same_unexercised_permissions_as_the_base(helm: Helm) -> None:
    chart = by_key(render_chart(helm, "autopilot-system"))[("ClusterRole", "", "autopilot")]
    base = by_key(kustomize(BASE))[("ClusterRole", "", "autopilot")]

    assert unexercised(chart) == unexercised(base) != {}


def test_with_rbac_namespaced_the_chart_grants_a_role_in_each_watched_namespace_and_its_own(
    helm: Helm, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"rbac": {"namespaced": True}, "watchedNamespaces": ["shop", "pay"]})
    )
    chart = by_key(render_chart(helm, "platform", values))
    [shipped] = [d for d in yaml.safe_load_all(NAMESPACED_RBAC.read_text()) if d["kind"] == "Role"]

    roles = {key[1]: chart[key] for key in chart if key[0] == "Role"}
    bindings = {key[1]: chart[key] for key in chart if key[0] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"shop", "pay", "platform"}
    assert ("ClusterRole", "", "autopilot") not in chart
    assert ("ClusterRoleBinding", "", "autopilot") not in chart
    for namespace, role in roles.items():
        assert role["rules"] == shipped["rules"], namespace
        assert unexercised(role) == unexercised(shipped)
        assert bindings[namespace]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "autopilot",
        }
        assert bindings[namespace]["subjects"] == [
            {"kind": "ServiceAccount", "name": "autopilot", "namespace": "platform"}
        ]


def test_rbac_namespaced_without_watched_namespaces_is_refused_saying_why(helm: Helm) -> None:
    refused = helm("template", "autopilot", str(CHART), "--set", "rbac.namespaced=true")

    assert refused.returncode != 0
    assert "rbac.namespaced needs watchedNamespaces" in refused.stderr


def test_the_example_overlay_runs_the_users_image_with_their_operator_modules() -> None:
    overlay = by_key(kustomize(OVERLAY))
    [worker] = overlay[("Deployment", "autopilot-system", "autopilot-worker")]["spec"]["template"][
        "spec"
    ]["containers"]

    assert worker["image"] == "example.com/platform/autopilot-acme:1.4.0"
    assert env_of(overlay, "autopilot-system", "autopilot-worker")[
        "AUTOPILOT_OPERATOR_MODULES"
    ] == ("acme_operators.quota")
    assert ("ClusterRole", "", "autopilot-acme") in overlay
    assert set(by_key(kustomize(BASE))) <= set(overlay)  # everything of the base stays


# --- against the session's real API server --------------------------------------------------


@pytest.fixture(scope="module")
def installed(kubeconfig_path: Path) -> Path:
    """The kustomize base, applied for real (server-side, as the base's comment advises)."""
    applied = kubectl(kubeconfig_path, "apply", "--server-side", "-k", str(BASE))
    assert applied.returncode == 0, applied.stderr
    return kubeconfig_path


@pytest.mark.cluster
def test_kubectl_apply_k_installs_the_worker_and_watcher_deployments(installed: Path):
    listed = kubectl(installed, "get", "deployments", "-n", "autopilot-system", "-o", "name")
    crd = kubectl(installed, "get", "crd", "canaries.autopilot.dev", "-o", "name")

    assert listed.stdout.split() == [
        "deployment.apps/autopilot-watchers",
        "deployment.apps/autopilot-worker",
    ]
    assert (
        crd.stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/canaries.autopilot.dev"
    )


@pytest.mark.cluster
def test_the_rendered_chart_is_accepted_by_the_api_server(
    installed: Path, helm: Helm, kube_api: client.ApiClient, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(EVERY_VALUE))
    with fresh_namespace(kube_api) as namespace:
        answers = [
            kubectl(
                installed,
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=helm",
                "--force-conflicts",  # the base owns the ClusterRoleBinding's subjects
                "-f",
                "-",
                stdin=manifests,
            )
            for manifests in (
                render_chart(helm, "autopilot-system"),
                render_chart(helm, namespace, values),
            )
        ]

    for answer in answers:
        assert answer.returncode == 0, answer.stderr
        assert "deployment.apps/autopilot-worker serverside-applied (server dry run)" in (
            answer.stdout
        )


@pytest.mark.cluster
def test_the_example_overlay_is_accepted_by_the_api_server(installed: Path) -> None:
    answer = kubectl(installed, "apply", "--server-side", "--dry-run=server", "-k", str(OVERLAY))

    assert answer.returncode == 0, answer.stderr
    assert "clusterrole.rbac.authorization.k8s.io/autopilot-acme serverside-applied" in (
        answer.stdout
    )


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("update", "virtualservices.networking.istio.io"),
        ("create", "destinationrules.networking.istio.io"),
        ("delete", "authorizationpolicies.security.istio.io"),
        ("update", "httproutes.gateway.networking.k8s.io"),
        ("patch", "deployments.apps"),
        ("watch", "canaries.autopilot.dev"),
        ("patch", "canaries.autopilot.dev"),
        ("create", "configmaps"),
        ("patch", "canaries.autopilot.dev/status"),
        ("update", "leases.coordination.k8s.io"),
        ("get", "events"),
        ("create", "events"),
        ("patch", "events"),
        ("get", "horizontalpodautoscalers.autoscaling"),
        ("create", "horizontalpodautoscalers.autoscaling"),
        ("update", "horizontalpodautoscalers.autoscaling"),
        ("get", "metrictemplates.autopilot.dev"),
        ("get", "alertproviders.autopilot.dev"),
    ],
)
def test_the_autopilot_service_account_may_do_what_operators_need(
    installed: Path, verb: str, resource: str
):
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = kubectl(installed, "auth", "can-i", verb, resource, *extra, "--as", SA, "-A")
    assert answer.stdout.strip() == "yes", (verb, resource, answer.stderr)


@pytest.mark.cluster
def test_the_autopilot_service_account_may_not_read_secrets(installed: Path):
    answer = kubectl(installed, "auth", "can-i", "get", "secrets", "--as", SA, "-A")
    assert answer.stdout.strip() == "no"
