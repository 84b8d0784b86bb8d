"""How Flux is set up on the local cluster, checked without building or starting it.

Flux's controllers are built from their release modules exactly as those releases pin them: a
dependency's ``replace`` lines are ignored by Go, so the wrapper module repeats them, and the
one that names a directory of Flux's own repository (``./api``) becomes the published module
of the same release. Nothing is compiled here; the go.mod text is Flux's. GitOps is a choice
the state directory remembers, and a cluster without it does not list Flux's parts.
"""

from __future__ import annotations

from pathlib import Path

from devcluster.build import (
    FLUX_KUSTOMIZE_CONTROLLER,
    FLUX_SOURCE_CONTROLLER,
    parse_replaces,
    release_wrapper_gomod,
)
from devcluster.cluster import FLUX_PARTS, DevCluster
from devcluster.state import ClusterState

#: The go-digest commit source-controller replaces the release with.
DIGEST_FORK = "v1.0.1-0.20220411205349-bde1400a84be"

#: The head of source-controller's go.mod, as its release ships it.
SOURCE_CONTROLLER_GOMOD = f"""\
module github.com/fluxcd/source-controller

go 1.26.0

replace github.com/fluxcd/source-controller/api => ./api

// Replace digest lib to master to gather access to BLAKE3.
// xref: https://github.com/opencontainers/go-digest/pull/66
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest {DIGEST_FORK}

require (
	github.com/fluxcd/source-controller/api v1.9.3
	sigs.k8s.io/controller-runtime v0.24.1
)
"""

#: kustomize-controller's replace lines, both forms.
KUSTOMIZE_CONTROLLER_GOMOD = """\
module github.com/fluxcd/kustomize-controller

go 1.26.0

replace github.com/fluxcd/kustomize-controller/api => ./api

// Pin kustomize to v5.8.1
replace (
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1
)

// Fix CVE-2022-28948
replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1
"""


def test_source_controller_takes_its_api_from_the_same_release_and_keeps_its_digest_fork() -> None:
    wrapper = release_wrapper_gomod(FLUX_SOURCE_CONTROLLER, SOURCE_CONTROLLER_GOMOD)

    assert "go 1.26.0" in wrapper
    version = FLUX_SOURCE_CONTROLLER.version
    assert f"require github.com/fluxcd/source-controller {version}" in wrapper
    assert (
        "replace github.com/fluxcd/source-controller/api => "
        f"github.com/fluxcd/source-controller/api {version}"
    ) in wrapper
    assert (
        "replace github.com/opencontainers/go-digest => "
        f"github.com/opencontainers/go-digest {DIGEST_FORK}"
    ) in wrapper
    assert "./api" not in wrapper


def test_kustomize_controller_keeps_every_pin_of_its_release_block_form_included() -> None:
    assert parse_replaces(KUSTOMIZE_CONTROLLER_GOMOD) == [
        ("github.com/fluxcd/kustomize-controller/api", "./api"),
        ("sigs.k8s.io/kustomize/api", "sigs.k8s.io/kustomize/api v0.21.1"),
        ("sigs.k8s.io/kustomize/kyaml", "sigs.k8s.io/kustomize/kyaml v0.21.1"),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3 v3.0.1"),
    ]
    wrapper = release_wrapper_gomod(FLUX_KUSTOMIZE_CONTROLLER, KUSTOMIZE_CONTROLLER_GOMOD)
    assert "replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1" in wrapper


def test_a_replace_of_one_version_only_keeps_that_version() -> None:
    assert parse_replaces("replace example.com/a v1.2.0 => example.com/b v1.3.0 // fork\n") == [
        ("example.com/a v1.2.0", "example.com/b v1.3.0")
    ]


def test_each_controller_is_cached_by_its_own_version() -> None:
    directory = FLUX_SOURCE_CONTROLLER.path.parent.name
    assert directory == f"source-controller-{FLUX_SOURCE_CONTROLLER.version}"
    assert FLUX_KUSTOMIZE_CONTROLLER.path.name == "kustomize-controller"


def test_a_cluster_without_gitops_lists_no_flux_part(tmp_path: Path) -> None:
    names = [part.name for part in DevCluster(tmp_path).status()]

    assert not set(FLUX_PARTS) & set(names)


def test_the_gitops_choice_and_the_flux_crds_are_remembered(tmp_path: Path) -> None:
    state = ClusterState(gitops=True, flux_crds=["gitrepositories.source.toolkit.fluxcd.io"])
    state.save(tmp_path / "cluster.json")

    again = ClusterState.load(tmp_path / "cluster.json")

    assert again.gitops and again.flux_crds == state.flux_crds
    assert DevCluster(tmp_path).gitops
    assert [part.name for part in DevCluster(tmp_path).status()][-3:] == list(FLUX_PARTS)
