"""`autopilot lint`: manifests are checked offline, with the workflow's own loader, so CI can
refuse a broken Canary before it is merged."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml

from cli.errors import Exit
from tests.canary.specs import FLAGGER_PODINFO, spec_dict
from tests.cli.test_cli_startup import loaded_by

ROOT = Path(__file__).resolve().parents[2]

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo"}}


def canary(name: str = "podinfo", **analysis: object) -> dict[str, object]:
    return {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": spec_dict(name, **analysis),
    }


def write(tmp_path: Path, name: str, *documents: object) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path)


async def test_flaggers_example_and_our_examples_pass_unchanged(autopilot, tmp_path):
    flagger = tmp_path / "flagger.yaml"
    flagger.write_text(FLAGGER_PODINFO)
    examples = [str(ROOT / "deploy/examples/canary.yaml"), str(ROOT / "demo/canary.yaml")]

    result = await autopilot("lint", str(flagger), *examples)

    assert result.exit_code == Exit.OK, result.output
    assert result.stdout == ""
    assert "3 document(s) checked, 0 invalid" in result.stderr


async def test_flaggers_ab_testing_mirroring_and_session_affinity_manifests_pass_unchanged(
    autopilot,
):
    manifests = sorted(str(p) for p in (ROOT / "tests/fixtures/flagger").glob("*.yaml"))
    assert len(manifests) == 3

    result = await autopilot("lint", *manifests)

    assert result.exit_code == Exit.OK, result.output
    assert "3 document(s) checked, 0 invalid" in result.stderr


async def test_each_invalid_document_is_named_with_its_file_number_and_field(autopilot, tmp_path):
    broken = canary("bad", stepWeight=200)
    broken["spec"]["service"]["port"] = 0  # type: ignore[index]
    path = write(tmp_path, "app.yaml", DEPLOYMENT, canary(), broken)

    result = await autopilot("lint", path)

    assert result.exit_code == Exit.INVALID
    assert result.stdout.splitlines() == [
        f"{path}:doc 3: spec.service.port: Input should be greater than or equal to 1",
        f"{path}:doc 3: spec.analysis.stepWeight: Input should be less than or equal to 100",
    ]
    assert "2 document(s) checked, 1 invalid, 1 of other kinds skipped" in result.stderr


async def test_a_refused_flagger_field_is_named_as_the_workflow_names_it(autopilot, tmp_path):
    nginx = canary()
    nginx["spec"]["ingressRef"] = {"kind": "Ingress", "name": "web"}  # type: ignore[index]
    path = write(tmp_path, "nginx.yaml", nginx)

    result = await autopilot("lint", path)

    assert result.exit_code == Exit.INVALID
    assert result.stdout.startswith(f"{path}:doc 1: spec.ingressRef: ingressRef is not supported")


async def test_a_misspelt_kind_of_our_group_is_a_problem_not_a_skip(autopilot, tmp_path):
    typo = {**canary(), "kind": "Canery"}
    path = write(tmp_path, "typo.yaml", typo)

    result = await autopilot("lint", path)

    assert result.exit_code == Exit.INVALID
    # The known kinds are the registered operators' (tests register more of their own).
    assert f"{path}:doc 1: kind: Canery is not a kind Autopilot knows (" in result.stdout
    known = result.stdout.split("knows (", 1)[1].split(")", 1)[0].split(", ")
    assert {"Canary", "Quarantine"} <= set(known)


async def test_another_registered_operators_manifest_is_checked_with_its_spec_model(
    autopilot, tmp_path
):
    quarantine = {
        "apiVersion": "autopilot.dev/v1alpha1",
        "kind": "Quarantine",
        "metadata": {"name": "web"},
        "spec": {"escalateAfter": "sometimes"},
    }
    path = write(tmp_path, "q.yaml", quarantine)

    result = await autopilot("lint", path)

    assert result.exit_code == Exit.INVALID
    assert result.stdout.startswith(f"{path}:doc 1: spec.escalateAfter: ")


async def test_invalid_yaml_and_a_missing_file_are_named(autopilot, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(canary()) + "---\nspec: [unclosed\n")

    result = await autopilot("lint", str(bad), str(tmp_path / "absent.yaml"))

    assert result.exit_code == Exit.INVALID
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{bad}:doc 2: (document): not valid YAML: ")
    assert lines[1] == f"{tmp_path / 'absent.yaml'}: (file): cannot read: No such file or directory"


async def test_standard_input_is_read_for_a_dash_and_no_client_is_imported(
    isolated_state, tmp_path
):
    good = yaml.safe_dump_all([DEPLOYMENT, canary()])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "lint",
        "-",
        env={k: v for k, v in {**os.environ, **isolated_state}.items() if v is not None},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(good.encode())
    assert process.returncode == Exit.OK, err.decode()
    assert out == b""
    assert "1 document(s) checked, 0 invalid, 1 of other kinds skipped" in err.decode()

    path = write(tmp_path, "c.yaml", canary())
    code, modules = await loaded_by("lint", path, env=isolated_state)
    assert code == Exit.OK
    assert sorted(modules & {"temporalio.client", "kubernetes", "workflows.registry"}) == []
