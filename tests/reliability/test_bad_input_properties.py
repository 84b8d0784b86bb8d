"""Bad input, everywhere: a clear refusal naming the field, never a crash, nothing started.

Property tests over three surfaces, 1,000 generated cases each: the spec loader the
workflow and the CLI share, ``autopilot lint`` as a user runs it, and a ``Canary`` object
sent to the real API server. Each case is a valid Flagger-style manifest with one thing
broken: a value replaced by arbitrary JSON, a field removed, an unknown field added, or the
text itself mangled. (The webhook endpoints have their own fuzz tests in
``tests/test_webhooks.py``.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from typer.testing import CliRunner

from cli.main import app
from models.canary import CanarySpecError, load_canary_spec
from models.canary_watch import CANARY_GROUP, CANARY_PLURAL, CANARY_VERSION

#: A valid Canary, as a Flagger user writes it.
VALID: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 9898, "targetPort": 9898, "gateways": ["public-gateway"]},
        "analysis": {
            "interval": "1m",
            "threshold": 5,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"},
            ],
            "webhooks": [
                {"name": "load-test", "url": "http://flagger-loadtester.test/", "timeout": "5s"}
            ],
        },
    },
}
#: 1,000 cases per surface, the same ones on every run (CI must not flake on a new seed).
CASES = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside ``node`` (dict keys and list indexes)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        yield (*prefix, key)
        if isinstance(child, dict | list):
            yield from paths(child, (*prefix, key))


PATHS = [p for p in paths(VALID["spec"])]


@st.composite
def broken_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """``VALID`` with one field replaced, removed or added."""
    manifest = copy.deepcopy(VALID)
    path = draw(st.sampled_from(PATHS))
    parent: Any = manifest["spec"]
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if how == "replace":
        parent[path[-1]] = draw(JSON)
    elif how == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
    return manifest


def problem_lines(manifest: Any) -> list[str] | None:
    """The loader's problems, or None when it loads."""
    try:
        load_canary_spec(manifest)
    except CanarySpecError as error:
        return error.problems
    return None


@CASES
@given(manifest=broken_manifests())
def test_the_spec_loader_refuses_with_a_field_path_and_never_crashes(
    manifest: dict[str, Any],
) -> None:
    problems = problem_lines(manifest)  # anything but CanarySpecError fails the test

    for line in problems or []:
        where, _, why = line.partition(": ")
        assert where.startswith(("spec", "(document)", "(spec)", "kind")), line
        assert why.strip(), line


@CASES
@given(manifest=broken_manifests(), mangle=st.sampled_from(["none", "cut", "tab", "bytes"]))
def test_lint_exits_0_or_2_naming_the_field_and_never_with_a_traceback(
    manifest: dict[str, Any], mangle: str
) -> None:
    text = yaml.safe_dump(manifest)
    if mangle == "cut":
        text = text[: len(text) // 2]
    elif mangle == "tab":
        text = text.replace("  ", "\t", 1)
    elif mangle == "bytes":
        text = text + "\n\x00\x07"

    result = CliRunner().invoke(app, ["lint", "-"], input=text)

    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:  # each finding: "-:doc N: <field path>: <why>"
        findings = [line for line in result.output.splitlines() if line.startswith("-:")]
        assert findings, result.output
        for line in findings:
            where = line.split(": ", 2)[1] if line.count(": ") >= 2 else ""
            assert where.startswith(("spec", "(document)", "(spec)", "kind", "(file)")), line


@pytest.mark.cluster
@CASES
@given(manifest=broken_manifests())
def test_the_api_server_takes_every_spec_the_loader_accepts_and_refuses_with_4xx(
    kube_api: client.ApiClient, namespace: str, manifest: dict[str, Any]
) -> None:
    """A server-side dry run. What the loader accepts, as the loader reads it, the API server
    takes too, or a valid canary could not be applied at all. What the loader refuses, the
    API server may refuse (with a 4xx naming the field) or take: the CRD cannot say every
    cross-field rule, and the watcher then marks the Canary Invalid and starts nothing."""
    body = {**manifest, "apiVersion": f"{CANARY_GROUP}/{CANARY_VERSION}"}
    problems = problem_lines(manifest)
    if problems is None:
        spec = load_canary_spec(manifest)
        body["spec"] = spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    custom = client.CustomObjectsApi(kube_api)
    try:
        custom.create_namespaced_custom_object(
            CANARY_GROUP, CANARY_VERSION, namespace, CANARY_PLURAL, body, dry_run="All"
        )
    except client.ApiException as error:
        refusal = json.loads(error.body or "{}")
        assert problems is not None, refusal.get("message")
        assert error.status in (400, 422), error.body
        if error.status == 422:  # invalid: each cause names its field
            assert refusal["details"]["causes"], error.body
