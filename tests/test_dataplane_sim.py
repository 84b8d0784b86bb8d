"""Tests of the SIMULATED data plane (the Envoy stand-in) in ``devcluster.dataplane_sim``.

The unit tests feed plain JSON objects, shaped as the API server returns them, to the pure
parts. The ``cluster`` test runs the simulator against the real dev cluster and reads its
metrics back through the real Prometheus with Flagger's own query.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import CustomObjectsApi
from prometheus_api_client import PrometheusConnect
from prometheus_client.parser import text_string_to_metric_families

from devcluster.dataplane_sim import ANNOTATIONS, DataPlaneSimulator, SimConfig
from devcluster.dataplane_sim import annotations as ann
from devcluster.dataplane_sim.__main__ import build_parser, main
from devcluster.dataplane_sim.allocation import Apportioner
from devcluster.dataplane_sim.authz import RequestAttributes, decide
from devcluster.dataplane_sim.latency import (
    ISTIO_DURATION_BUCKETS_MS,
    LatencyModel,
    bucket_shares,
)
from devcluster.dataplane_sim.metrics import FORGET_AFTER_TICKS, IstioMetricStore
from devcluster.dataplane_sim.routing import (
    MeshIndex,
    SyntheticRequest,
    resolve_host,
    route_destinations,
    select_http_route,
    subset_labels,
)
from devcluster.dataplane_sim.traffic import (
    ISTIO_LABELS,
    Batch,
    TrafficGenerator,
    TrafficSettings,
)
from tests.fixtures.cluster import fresh_namespace

DOCS = Path(__file__).resolve().parents[1] / "docs" / "dataplane-sim.md"

# ---------------------------------------------------------------------------------------------
# Builders of API-shaped objects
# ---------------------------------------------------------------------------------------------


def deployment(
    name: str,
    namespace: str = "shop",
    labels: Mapping[str, str] | None = None,
    replicas: int = 2,
    annotations: Mapping[str, str] | None = None,
    template_annotations: Mapping[str, str] | None = None,
    ready: int | None = None,
    image: str = "podinfo:1",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels or {"app": name})},
            "template": {
                "metadata": {
                    "labels": dict(labels or {"app": name}),
                    "annotations": dict(template_annotations or {}),
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }
    if ready is not None:
        body["status"] = {"readyReplicas": ready}
    return body


def service(name: str, namespace: str = "shop", selector: Mapping[str, str] | None = None) -> Any:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": dict(selector if selector is not None else {"app": name})},
    }


def destination_rule(host: str, namespace: str = "shop", **subsets: Mapping[str, str]) -> Any:
    return {
        "metadata": {"name": f"{host}-dr", "namespace": namespace},
        "spec": {
            "host": host,
            "subsets": [{"name": n, "labels": dict(lbls)} for n, lbls in subsets.items()],
        },
    }


def virtual_service(
    name: str,
    routes: list[tuple[str, str | None, int | None]],
    namespace: str = "shop",
    annotations: Mapping[str, str] | None = None,
    extra_http: list[Any] | None = None,
) -> Any:
    destinations = []
    for host, subset, weight in routes:
        entry: dict[str, Any] = {"destination": {"host": host}}
        if subset:
            entry["destination"]["subset"] = subset
        if weight is not None:
            entry["weight"] = weight
        destinations.append(entry)
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"vs-{namespace}-{name}",
            "annotations": dict(annotations or {}),
        },
        "spec": {"hosts": [name], "http": [*(extra_http or []), {"route": destinations}]},
    }


def policy(
    name: str, namespace: str, action: str | None, selector: Mapping[str, str] | None, rules: Any
) -> Any:
    spec: dict[str, Any] = {}
    if action:
        spec["action"] = action
    if selector is not None:
        spec["selector"] = {"matchLabels": dict(selector)}
    if rules is not None:
        spec["rules"] = rules
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


PODINFO_STABLE = {"app": "podinfo", "version": "stable"}
PODINFO_CANARY = {"app": "podinfo", "version": "canary"}


class Mesh:
    """A podinfo Service with stable/canary Deployments, a DestinationRule and a VirtualService,
    driven through the traffic generator tick by tick."""

    def __init__(self, stable_weight: int = 80, canary_weight: int = 20, rate: float = 10) -> None:
        self.deployments = [
            deployment("podinfo-stable", labels=PODINFO_STABLE, ready=2),
            deployment(
                "podinfo-canary",
                labels=PODINFO_CANARY,
                ready=1,
                replicas=1,
                annotations={"sim.autopilot.dev/error-rate": "0.5"},
            ),
        ]
        self.services = [service("podinfo")]
        self.rules = [destination_rule("podinfo", stable=PODINFO_STABLE, canary=PODINFO_CANARY)]
        self.policies: list[Any] = []
        self.set_weights(stable_weight, canary_weight)
        self.generator = TrafficGenerator(TrafficSettings(tick_seconds=1.0, default_rate=rate))
        self.store = IstioMetricStore()

    def set_weights(self, stable: int, canary: int) -> None:
        self.virtual_services = [
            virtual_service(
                "podinfo", [("podinfo", "stable", stable), ("podinfo", "canary", canary)]
            )
        ]

    def tick(self, times: int = 1) -> list[Batch]:
        batches: list[Batch] = []
        for _ in range(times):
            index = MeshIndex(self.services, self.rules, self.deployments)
            ready = {
                (d["metadata"]["namespace"], d["metadata"]["name"]): (d.get("status") or {}).get(
                    "readyReplicas", 0
                )
                for d in self.deployments
            }
            found = self.generator.tick(self.virtual_services, index, self.policies, ready, [])
            self.store.add(found)
            batches.extend(found)
        return batches

    def requests(self, **match: str) -> int:
        return self.store.requests(**match)


# ---------------------------------------------------------------------------------------------
# Allocation: weights to whole requests
# ---------------------------------------------------------------------------------------------


def test_an_80_20_split_of_ten_requests_gives_exactly_8_and_2_every_tick() -> None:
    apportioner = Apportioner()
    for _ in range(5):
        assert apportioner.split("vs", 10, [("stable", 80), ("canary", 20)]) == {
            "stable": 8,
            "canary": 2,
        }


def test_a_split_never_invents_or_loses_a_request() -> None:
    apportioner = Apportioner()
    for total in [0, 1, 2, 3, 7, 13, 100]:
        counts = apportioner.split("k", total, [("a", 1), ("b", 1), ("c", 1)])
        assert sum(counts.values()) == total


def test_rounding_errors_carry_over_so_a_long_run_matches_the_weights() -> None:
    apportioner = Apportioner()
    totals = {"a": 0, "b": 0, "c": 0}
    for _ in range(300):
        for label, count in apportioner.split("k", 1, [("a", 1), ("b", 1), ("c", 1)]).items():
            totals[label] += count
    assert totals == {"a": 100, "b": 100, "c": 100}


def test_a_fractional_rate_turns_into_whole_requests_over_several_ticks() -> None:
    apportioner = Apportioner()
    assert [apportioner.whole("vs", 0.25) for _ in range(8)] == [0, 0, 0, 1, 0, 0, 0, 1]


def test_a_destination_with_weight_zero_gets_no_request() -> None:
    apportioner = Apportioner()
    assert apportioner.split("k", 10, [("stable", 0), ("canary", 100)]) == {"canary": 10}
    assert apportioner.split("k", 10, [("stable", 0), ("canary", 0)]) == {}


def test_remainders_of_decision_points_no_longer_used_are_forgotten() -> None:
    apportioner = Apportioner()
    apportioner.split("gone", 3, [("a", 1), ("b", 2)])
    apportioner.forget_unused()
    apportioner.split("kept", 3, [("a", 1), ("b", 2)])
    apportioner.forget_unused()
    assert len(apportioner) == 1


# ---------------------------------------------------------------------------------------------
# Latency distribution
# ---------------------------------------------------------------------------------------------


def test_a_latency_model_built_from_mean_and_p99_reproduces_both() -> None:
    model, problem = LatencyModel.from_mean_p99(50, 200)
    assert problem == ""
    assert model.mean == pytest.approx(50)
    assert model.quantile(0.99) == pytest.approx(200)


def test_without_a_p99_the_tail_is_about_two_and_a_third_times_the_mean() -> None:
    model, _ = LatencyModel.from_mean_p99(10, None)
    assert model.quantile(0.99) / model.mean == pytest.approx(2.33, abs=0.05)


def test_an_impossible_p99_is_adjusted_and_reported() -> None:
    capped, problem = LatencyModel.from_mean_p99(10, 1000)
    assert "capped" in problem
    assert capped.mean == pytest.approx(10)
    constant, problem = LatencyModel.from_mean_p99(10, 5)
    assert "constant" in problem
    assert constant.quantile(0.99) == pytest.approx(10)


def test_bucket_shares_cover_istios_default_buckets_and_add_up_to_one() -> None:
    assert ISTIO_DURATION_BUCKETS_MS[:4] == (0.5, 1, 5, 10)
    assert ISTIO_DURATION_BUCKETS_MS[-1] == 3600000
    shares = bucket_shares(LatencyModel.from_mean(50))
    assert len(shares) == len(ISTIO_DURATION_BUCKETS_MS) + 1
    assert math.fsum(shares) == pytest.approx(1)
    # 50 ms mean: nearly everything between 25 ms and 100 ms
    assert shares[5] + shares[6] > 0.8


# ---------------------------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------------------------


def test_error_rate_accepts_a_fraction_or_a_percentage() -> None:
    assert ann.parse_fraction("0.5") == 0.5
    assert ann.parse_fraction("50%") == 0.5
    with pytest.raises(ValueError, match="outside"):
        ann.parse_fraction("1.5")


def test_an_unparsable_annotation_falls_back_to_the_default_and_says_why() -> None:
    problems: list[str] = []
    behaviour = ann.workload_behaviour(
        deployment("x", annotations={"sim.autopilot.dev/error-rate": "lots"}), problems
    )
    assert behaviour.error_rate == 0.0
    assert problems == ["sim.autopilot.dev/error-rate: 'lots' is not a number; using 0.0"]


def test_the_deployments_own_annotation_wins_over_its_pod_template() -> None:
    behaviour = ann.workload_behaviour(
        deployment(
            "x",
            annotations={"sim.autopilot.dev/latency-ms": "80"},
            template_annotations={
                "sim.autopilot.dev/latency-ms": "20",
                "sim.autopilot.dev/error-rate": "10%",
                "sim.autopilot.dev/error-code": "503",
            },
        ),
        [],
    )
    assert behaviour.latency.mean == pytest.approx(80)
    assert behaviour.error_rate == pytest.approx(0.1)
    assert behaviour.error_code == 503


def test_a_virtual_service_can_set_its_rate_client_and_path() -> None:
    behaviour = ann.route_behaviour(
        virtual_service(
            "podinfo",
            [("podinfo", None, None)],
            annotations={
                "sim.autopilot.dev/rate": "25",
                "sim.autopilot.dev/source": "frontend/web",
                "sim.autopilot.dev/path": "/api",
            },
        ),
        10.0,
        ann.SourceRef("client"),
        [],
    )
    assert behaviour.rate == 25
    assert behaviour.source == ann.SourceRef(name="web", namespace="frontend")
    assert behaviour.path == "/api"


def test_every_annotation_and_its_default_is_documented() -> None:
    text = DOCS.read_text()
    for key, annotation in ANNOTATIONS.items():
        assert f"`{key}`" in text, key
        assert annotation.default in text, key
    assert all(key.startswith(ann.PREFIX) for key in ANNOTATIONS)


def test_the_command_line_takes_the_documented_options() -> None:
    args = build_parser().parse_args(
        ["--kubeconfig", "k", "--metrics-port", "9", "--rate", "5", "--namespace", "demo"]
    )
    assert (args.kubeconfig, args.metrics_port, args.rate, args.tick) == ("k", 9, 5.0, 1.0)
    assert args.namespace == "demo"
    text = DOCS.read_text()
    for option in ["--kubeconfig", "--metrics-port", "--rate", "--tick", "--namespace"]:
        assert option in text


def test_the_command_line_exits_with_2_and_a_message_for_an_unusable_kubeconfig(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing-kubeconfig"
    assert main(["--kubeconfig", str(missing), "--metrics-port", "0"]) == 2
    assert f"cannot use kubeconfig {missing}" in caplog.text


# ---------------------------------------------------------------------------------------------
# Routing: hosts, routes, weights, subsets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["podinfo", "podinfo.shop", "podinfo.shop.svc", "podinfo.shop.svc.cluster.local", "PodInfo"],
)
def test_short_namespaced_and_fully_qualified_hosts_name_the_same_service(host: str) -> None:
    resolved = resolve_host(host, "shop")
    assert resolved is not None
    assert resolved.fqdn == "podinfo.shop.svc.cluster.local"


def test_wildcards_and_hosts_outside_the_cluster_resolve_to_no_service() -> None:
    assert resolve_host("*.shop.svc.cluster.local", "shop") is None
    assert resolve_host("api.example.com", "shop") is None


def test_the_first_route_whose_match_a_plain_get_satisfies_is_taken() -> None:
    vs = virtual_service(
        "podinfo",
        [("podinfo", "stable", None)],
        extra_http=[
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": []},
            {"match": [{"uri": {"prefix": "/admin"}}], "route": []},
        ],
    )
    selected = select_http_route(vs, SyntheticRequest(path="/"))
    assert selected is not None and selected[0] == 2
    selected = select_http_route(vs, SyntheticRequest(path="/admin/x"))
    assert selected is not None and selected[0] == 1


def test_a_single_destination_takes_all_traffic_whatever_its_weight() -> None:
    [only] = route_destinations({"route": [{"destination": {"host": "a"}, "weight": 0}]})
    assert only.weight == 1.0
    both = route_destinations(
        {"route": [{"destination": {"host": "a"}, "weight": 30}, {"destination": {"host": "b"}}]}
    )
    assert [d.weight for d in both] == [30.0, 0.0]


def test_a_subset_selects_the_deployments_with_the_service_and_subset_labels() -> None:
    mesh = Mesh()
    index = MeshIndex(mesh.services, mesh.rules, mesh.deployments)
    fqdn = "podinfo.shop.svc.cluster.local"
    rule = index.destination_rule(fqdn, "shop")
    labels = subset_labels(rule, "canary")
    assert labels == PODINFO_CANARY
    names = [d["metadata"]["name"] for d in index.endpoints(index.services[fqdn], labels)]
    assert names == ["podinfo-canary"]
    everyone = index.endpoints(index.services[fqdn], {})
    assert len(everyone) == 2
    assert subset_labels(rule, "blue") is None


def test_the_destination_rule_in_the_clients_namespace_wins() -> None:
    fqdn = "podinfo.shop.svc.cluster.local"
    rules = [
        destination_rule("podinfo.shop.svc.cluster.local", "shop", stable={"v": "shop"}),
        destination_rule("podinfo.shop.svc.cluster.local", "web", stable={"v": "web"}),
    ]
    index = MeshIndex([service("podinfo")], rules, [])
    assert subset_labels(index.destination_rule(fqdn, "web"), "stable") == {"v": "web"}
    assert subset_labels(index.destination_rule(fqdn, "other"), "stable") == {"v": "shop"}


# ---------------------------------------------------------------------------------------------
# Authorization
# ---------------------------------------------------------------------------------------------

WEB_REQUEST = RequestAttributes(
    request=SyntheticRequest(
        path="/",
        source_namespace="web",
        source_principal="cluster.local/ns/web/sa/default",
    ),
    host="podinfo.shop.svc.cluster.local",
)


def allowed(policies: list[Any], labels: Mapping[str, str] = PODINFO_CANARY) -> bool:
    return decide(policies, "shop", labels, WEB_REQUEST).allowed


def test_a_deny_policy_selecting_the_workload_denies_it() -> None:
    deny = policy("quarantine", "shop", "DENY", PODINFO_CANARY, [{}])
    decision = decide([deny], "shop", PODINFO_CANARY, WEB_REQUEST)
    assert not decision.allowed
    assert decision.policy == "shop/quarantine"
    assert allowed([deny], PODINFO_STABLE)


def test_an_allow_policy_without_rules_denies_everything_it_selects() -> None:
    assert not allowed([policy("deny-all", "shop", None, None, None)])


def test_a_deny_policy_without_rules_denies_nothing() -> None:
    assert allowed([policy("noop", "shop", "DENY", None, None)])


def test_an_allow_policy_lets_only_matching_sources_through() -> None:
    web_only = [{"from": [{"source": {"namespaces": ["web"]}}]}]
    assert allowed([policy("web-only", "shop", "ALLOW", None, web_only)])
    other_only = [{"from": [{"source": {"principals": ["cluster.local/ns/other/*"]}}]}]
    assert not allowed([policy("other", "shop", "ALLOW", None, other_only)])


def test_policies_of_other_namespaces_do_not_apply_but_the_root_namespace_does() -> None:
    assert allowed([policy("elsewhere", "web", "DENY", None, [{}])])
    assert not allowed([policy("mesh-wide", "istio-system", "DENY", None, [{}])])


def test_conditions_the_synthetic_request_cannot_meet_never_match() -> None:
    needs_jwt = [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]
    assert not allowed([policy("jwt", "shop", "ALLOW", None, needs_jwt)])
    not_admin = [{"to": [{"operation": {"notPaths": ["/admin*"], "methods": ["GET"]}}]}]
    assert allowed([policy("paths", "shop", "ALLOW", None, not_admin)])


# ---------------------------------------------------------------------------------------------
# Traffic: what the exported counters say
# ---------------------------------------------------------------------------------------------


def success_rate(mesh: Mesh, workload: str) -> float:
    """Flagger's request-success-rate, evaluated on cumulative counters."""
    store = mesh.store
    total = store.requests(reporter="destination", destination_workload=workload)
    errors = sum(
        store.requests(reporter="destination", destination_workload=workload, response_code=code)
        for code in ("500", "503")
    )
    return 100.0 * (total - errors) / total


def test_requests_follow_the_route_weights_and_the_canarys_error_rate() -> None:
    mesh = Mesh(80, 20, rate=10)
    mesh.tick(10)
    assert mesh.requests(reporter="destination", destination_workload="podinfo-stable") == 80
    assert mesh.requests(reporter="destination", destination_workload="podinfo-canary") == 20
    assert success_rate(mesh, "podinfo-stable") == 100.0
    assert success_rate(mesh, "podinfo-canary") == 50.0
    # the source sidecar reports the same requests
    assert mesh.requests(reporter="source") == 100


def test_a_weight_change_shows_in_the_counters_on_the_next_tick() -> None:
    mesh = Mesh(80, 20)
    mesh.tick(3)
    before = mesh.requests(reporter="destination", destination_workload="podinfo-stable")
    mesh.set_weights(0, 100)
    mesh.tick()
    assert mesh.requests(reporter="destination", destination_workload="podinfo-stable") == before
    assert mesh.requests(reporter="destination", destination_workload="podinfo-canary") == 16


def live(mesh: Mesh, *names: str) -> list[tuple[str, str]]:
    return [
        ("shop", d["metadata"]["name"]) for d in mesh.deployments if d["metadata"]["name"] in names
    ]


def test_a_deleted_workloads_series_are_forgotten_and_the_others_kept() -> None:
    mesh = Mesh(80, 20)
    mesh.tick(3)
    stable = mesh.requests(reporter="destination", destination_workload="podinfo-stable")
    scrape = len(mesh.store.render())

    forgotten = [mesh.store.retain(live(mesh, "podinfo-stable")) for _ in range(FORGET_AFTER_TICKS)]

    assert forgotten[:-1] == [0] * (FORGET_AFTER_TICKS - 1) and forgotten[-1] > 0
    assert mesh.requests(destination_workload="podinfo-canary") == 0
    assert mesh.requests(reporter="destination", destination_workload="podinfo-stable") == stable
    assert len(mesh.store.render()) < scrape


def test_a_workload_missing_from_one_read_keeps_its_counters() -> None:
    mesh = Mesh(80, 20)
    mesh.tick(3)
    canary = mesh.requests(destination_workload="podinfo-canary")
    mesh.store.retain(live(mesh, "podinfo-stable"))  # one partial read of the cluster
    mesh.store.retain(live(mesh, "podinfo-stable", "podinfo-canary"))
    for _ in range(FORGET_AFTER_TICKS - 1):
        mesh.store.retain(live(mesh, "podinfo-stable"))
    assert mesh.requests(destination_workload="podinfo-canary") == canary


def test_a_destination_without_ready_replicas_gets_503_no_healthy_upstream() -> None:
    mesh = Mesh(80, 20)
    mesh.deployments[1]["status"] = {}
    mesh.tick()
    assert mesh.requests(reporter="destination", destination_workload="podinfo-canary") == 0
    assert (
        mesh.requests(
            reporter="source",
            destination_workload="unknown",
            destination_service="podinfo.shop.svc.cluster.local",
            response_code="503",
            response_flags="UH",
        )
        == 2
    )


def test_a_subset_missing_from_the_destination_rule_gets_503_no_cluster() -> None:
    mesh = Mesh()
    mesh.rules = [destination_rule("podinfo", stable=PODINFO_STABLE)]
    mesh.tick()
    assert mesh.requests(reporter="source", response_code="503", response_flags="NC") == 2


def test_a_quarantined_workload_answers_403_to_everyone() -> None:
    mesh = Mesh(50, 50)
    mesh.policies = [policy("quarantine", "shop", "DENY", PODINFO_CANARY, [{}])]
    mesh.tick()
    canary = {"destination_workload": "podinfo-canary"}
    assert mesh.requests(reporter="destination", response_code="403", **canary) == 5
    assert mesh.requests(reporter="source", response_code="403", **canary) == 5
    assert mesh.requests(reporter="destination", response_code="200", **canary) == 0
    assert success_rate(mesh, "podinfo-stable") == 100.0


def test_a_host_without_subset_spreads_requests_by_ready_replicas() -> None:
    mesh = Mesh()
    mesh.virtual_services = [virtual_service("podinfo", [("podinfo", None, None)])]
    mesh.tick(3)
    assert mesh.requests(reporter="destination", destination_workload="podinfo-stable") == 20
    assert mesh.requests(reporter="destination", destination_workload="podinfo-canary") == 10


def test_the_rate_annotation_overrides_the_default_rate() -> None:
    mesh = Mesh(100, 0)
    mesh.virtual_services[0]["metadata"]["annotations"]["sim.autopilot.dev/rate"] = "2.5"
    mesh.tick(4)
    assert mesh.requests(reporter="destination") == 10


def test_requests_carry_istios_standard_labels() -> None:
    mesh = Mesh(0, 100)
    mesh.tick()
    labels = dict(zip(ISTIO_LABELS, mesh.tick()[0].labels, strict=True))
    assert labels == labels | {
        "reporter": "destination",
        "source_workload": "dataplane-sim-client",
        "source_workload_namespace": "shop",
        "destination_workload": "podinfo-canary",
        "destination_workload_namespace": "shop",
        "destination_app": "podinfo",
        "destination_version": "canary",
        "destination_service": "podinfo.shop.svc.cluster.local",
        "destination_service_name": "podinfo",
        "destination_service_namespace": "shop",
        "request_protocol": "http",
        "response_flags": "-",
        "connection_security_policy": "mutual_tls",
        "destination_principal": "spiffe://cluster.local/ns/shop/sa/default",
    }


def test_the_histogram_counts_every_request_once_with_the_workloads_mean_latency() -> None:
    mesh = Mesh(100, 0)
    mesh.deployments[0]["spec"]["template"]["metadata"]["annotations"] = {
        "sim.autopilot.dev/latency-ms": "40"
    }
    batches = [b for b in mesh.tick(5) if b.labels[0] == "destination"]
    assert all(sum(b.buckets) == b.requests for b in batches)
    assert sum(b.duration_sum_ms for b in batches) == pytest.approx(40 * 50)


def test_the_metrics_endpoint_speaks_prometheus_text_with_istio_names() -> None:
    mesh = Mesh(80, 20)
    mesh.tick(2)
    text = mesh.store.render().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"istio_requests", "istio_request_duration_milliseconds", "autopilot_sim_info"} <= set(
        families
    )
    info = families["autopilot_sim_info"].samples[0]
    assert info.labels["simulated"] == "true"
    buckets = [
        s
        for s in families["istio_request_duration_milliseconds"].samples
        if s.name.endswith("_bucket")
        and s.labels["destination_workload"] == "podinfo-stable"
        and s.labels["reporter"] == "destination"
    ]
    assert [s.labels["le"] for s in buckets][:3] == ["0.5", "1.0", "5.0"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 16
    assert re.search(r'^istio_requests_total\{.*reporter="destination"', text, re.MULTILINE)


def test_every_scraped_sample_carries_the_counts_and_labels_it_was_given_even_odd_ones() -> None:
    store = IstioMetricStore(version='2"b')
    odd = (*tuple(f"v{i}" for i in range(len(ISTIO_LABELS) - 1)), 'a\\b "c"\nd')
    buckets = (1, 0, 2) + (0,) * (len(ISTIO_DURATION_BUCKETS_MS) - 3) + (4,)
    store.add([Batch(odd, 7, buckets, 12.5), Batch(odd, 3, (3,) + (0,) * (len(buckets) - 1), 1.0)])

    families = {f.name: f for f in text_string_to_metric_families(store.render().decode())}

    (requests,) = families["istio_requests"].samples
    assert requests.labels == dict(zip(ISTIO_LABELS, odd, strict=True))
    assert requests.value == 10
    histogram = {
        (s.name, s.labels.get("le")): s.value
        for s in families["istio_request_duration_milliseconds"].samples
    }
    bucket = "istio_request_duration_milliseconds_bucket"
    assert histogram[(bucket, "0.5")] == 4 and histogram[(bucket, "5.0")] == 6
    assert histogram[(bucket, "+Inf")] == 10
    assert histogram[("istio_request_duration_milliseconds_count", None)] == 10
    assert histogram[("istio_request_duration_milliseconds_sum", None)] == 13.5
    assert families["autopilot_sim_info"].samples[0].labels["version"] == '2"b'
    assert families["autopilot_sim_ticks"].samples[0].value == 0


# ---------------------------------------------------------------------------------------------
# On the real dev cluster, read back through the real Prometheus
# ---------------------------------------------------------------------------------------------

PODINFO_MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo-stable
spec:
  replicas: 2
  selector: {matchLabels: {app: podinfo, version: stable}}
  template:
    metadata: {labels: {app: podinfo, version: stable}}
    spec: {containers: [{name: podinfo, image: "podinfo:6.7.0"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo-canary
  annotations: {sim.autopilot.dev/error-rate: "0.5"}
spec:
  replicas: 1
  selector: {matchLabels: {app: podinfo, version: canary}}
  template:
    metadata: {labels: {app: podinfo, version: canary}}
    spec: {containers: [{name: podinfo, image: "podinfo:6.7.1"}]}
---
apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  selector: {app: podinfo}
  ports: [{name: http, port: 9898}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: podinfo
spec:
  host: podinfo
  subsets:
  - {name: stable, labels: {version: stable}}
  - {name: canary, labels: {version: canary}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: podinfo
spec:
  hosts: [podinfo]
  http:
  - route:
    - {destination: {host: podinfo, subset: stable}, weight: 80}
    - {destination: {host: podinfo, subset: canary}, weight: 20}
"""

#: Merge patch of the VirtualService that sends every request to the canary.
ALL_TO_CANARY = {
    "spec": {
        "http": [
            {
                "route": [
                    {"destination": {"host": "podinfo", "subset": "stable"}, "weight": 0},
                    {"destination": {"host": "podinfo", "subset": "canary"}, "weight": 100},
                ]
            }
        ]
    }
}
#: Flagger's request-success-rate query for Istio, verbatim but for the window.
SUCCESS_RATE = (
    'sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",'
    'destination_workload=~"{workload}",response_code!~"5.*"}}[30s])) / '
    'sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",'
    'destination_workload=~"{workload}"}}[30s])) * 100'
)
#: Flagger's request-duration query for Istio (p99 in milliseconds).
REQUEST_DURATION = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{"
    'reporter="destination",destination_workload_namespace="{ns}",'
    'destination_workload=~"{workload}"}}[30s])) by (le))'
)
#: Requests a workload received over the last five seconds, per the destination sidecar.
INCREASE = (
    'sum(increase(istio_requests_total{{reporter="destination",'
    'destination_workload_namespace="{ns}",destination_workload="{workload}"}}[5s]))'
)
#: Percentage points the success rates may differ from 100% and 50%.
TOLERANCE = 10.0
#: Generous deadline for waits on a shared, noisy machine (never asserted on).
PATIENCE_S = 120.0


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    binary = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))
    result = subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after PATIENCE_S."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.5)


def scalar(prometheus: PrometheusConnect, query: str) -> float | None:
    result = prometheus.custom_query(query)
    return float(result[0]["value"][1]) if result else None


def scraped_requests(metrics_url: str, workload: str) -> float:
    """``istio_requests_total`` of one workload (destination reporter) from a /metrics page."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "istio_requests"
        for sample in family.samples
        if sample.name == "istio_requests_total"
        and sample.labels["reporter"] == "destination"
        and sample.labels["destination_workload"] == workload
    )


@pytest.mark.cluster
def test_flaggers_success_rate_sees_a_healthy_stable_and_a_half_failing_canary(
    dev_cluster: Any,
    kube_api: Any,
    kubeconfig_path: Path,
    namespace: str,
    prometheus_url: str,
) -> None:
    parts = {part.name: part for part in dev_cluster.status()}
    if not parts["dataplane-sim"].healthy:
        pytest.fail(f"the dev cluster's simulator (scraped by Prometheus) is not running: {parts}")
    kubectl(kubeconfig_path, "apply", "-n", namespace, "-f", "-", stdin=PODINFO_MANIFESTS)

    # In-process simulator for this namespace: deterministic ticks and its own /metrics page.
    # (Prometheus scrapes the cluster's simulator process, which watches every namespace.)
    sim = DataPlaneSimulator(kube_api, SimConfig(namespace=namespace, metrics_port=0))
    sim.serve_metrics()
    try:
        sim.tick()
        sim.tick()  # one simulated second later: the default ready delay has passed
        for name in ("podinfo-stable", "podinfo-canary"):
            out = kubectl(
                kubeconfig_path, "rollout", "status", f"deployment/{name}", "-n", namespace
            )
            assert "successfully rolled out" in out

        prometheus = PrometheusConnect(url=prometheus_url, disable_ssl=True)
        enough = (
            f'count_over_time(istio_requests_total{{reporter="destination",'
            f'destination_workload_namespace="{namespace}",'
            f'destination_workload="podinfo-canary",response_code="500"}}[30s]) >= 5'
        )
        wait_for("five scrapes of the canary's errors", lambda: prometheus.custom_query(enough))
        stable = scalar(prometheus, SUCCESS_RATE.format(ns=namespace, workload="podinfo-stable"))
        canary = scalar(prometheus, SUCCESS_RATE.format(ns=namespace, workload="podinfo-canary"))
        assert stable is not None and abs(stable - 100.0) <= TOLERANCE, f"stable: {stable}%"
        assert canary is not None and abs(canary - 50.0) <= TOLERANCE, f"canary: {canary}%"
        # Flagger's request-duration: default latency 10 ms mean, p99 about 23 ms, which
        # lies in Istio's (10, 25] ms bucket.
        p99 = scalar(prometheus, REQUEST_DURATION.format(ns=namespace, workload="podinfo-stable"))
        assert p99 is not None and 10.0 < p99 <= 25.0, f"p99: {p99} ms"

        # Shift all traffic to the canary: the very next tick counts no stable request.
        metrics_url = sim.metrics_url
        assert metrics_url is not None
        stable_before = scraped_requests(metrics_url, "podinfo-stable")
        canary_before = scraped_requests(metrics_url, "podinfo-canary")
        CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            "networking.istio.io",
            "v1",
            namespace,
            "virtualservices",
            "podinfo",
            ALL_TO_CANARY,
            _content_type="application/merge-patch+json",
        )
        sim.tick()
        assert scraped_requests(metrics_url, "podinfo-stable") == stable_before
        assert scraped_requests(metrics_url, "podinfo-canary") == canary_before + 10

        # ...and Prometheus sees the stable's traffic stop while the canary's goes on.
        stable_increase = INCREASE.format(ns=namespace, workload="podinfo-stable")
        canary_increase = INCREASE.format(ns=namespace, workload="podinfo-canary")
        wait_for(
            "Prometheus to see no new stable requests",
            lambda: scalar(prometheus, stable_increase) == 0.0,
        )
        assert (scalar(prometheus, canary_increase) or 0.0) > 0.0
    finally:
        sim.stop()


QUARANTINE = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: quarantine-canary
spec:
  action: DENY
  selector: {matchLabels: {app: podinfo, version: canary}}
  rules: [{}]
"""


@pytest.mark.cluster
def test_a_deny_policy_applied_to_the_cluster_turns_the_canarys_requests_into_403(
    kube_api: Any, kubeconfig_path: Path, namespace: str
) -> None:
    kubectl(kubeconfig_path, "apply", "-n", namespace, "-f", "-", stdin=PODINFO_MANIFESTS)
    sim = DataPlaneSimulator(kube_api, SimConfig(namespace=namespace))
    sim.tick()
    for name in ("podinfo-stable", "podinfo-canary"):
        kubectl(kubeconfig_path, "rollout", "status", f"deployment/{name}", "-n", namespace)
    kubectl(kubeconfig_path, "apply", "-n", namespace, "-f", "-", stdin=QUARANTINE)
    before = sim.store.requests(reporter="destination", destination_workload="podinfo-stable")
    sim.tick()
    canary = {"reporter": "destination", "destination_workload": "podinfo-canary"}
    assert sim.store.requests(response_code="403", **canary) == 2
    stable = sim.store.requests(reporter="destination", destination_workload="podinfo-stable")
    assert stable - before == 8
    assert sim.store.requests(response_code="403", destination_workload="podinfo-stable") == 0


@pytest.mark.cluster
def test_a_deleted_namespace_stops_sending_traffic_and_getting_status(
    kube_api: Any, kubeconfig_path: Path
) -> None:
    # The namespace controller takes a while to empty a deleted namespace: a long test run
    # must not meanwhile keep simulating every earlier test's workloads.
    with fresh_namespace(kube_api) as doomed:
        kubectl(kubeconfig_path, "apply", "-n", doomed, "-f", "-", stdin=PODINFO_MANIFESTS)
        sim = DataPlaneSimulator(kube_api, SimConfig(namespace=doomed))
        before = sim.tick()
        assert (before.deployments, before.virtual_services) == (2, 1)
        assert before.requests == 10
    after = sim.tick()  # the namespace is now Terminating, its objects still stored
    assert (after.deployments, after.virtual_services, after.requests) == (0, 0, 0)
