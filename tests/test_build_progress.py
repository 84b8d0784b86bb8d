"""The first ``autopilot dev build`` says how far it is: packages compiled out of those Go must
compile, the time elapsed and an estimate, and in a log a line every few seconds only.

The package names come from a real first build of Helm v3.22.0 (``go list -deps`` and
``go build -v``), with a download and a compiler error mixed in; nothing is compiled here.
"""

from __future__ import annotations

from collections.abc import Iterable

from typer.testing import CliRunner

from cli.dev import dev_app
from devcluster.build import (
    FLUX_CONTROLLERS,
    HELM,
    helm_path,
    helm_version_ldflags,
    parse_client_go_minor,
    release_wrapper_gomod,
)
from devcluster.compile_progress import (
    CompilePlan,
    CompileProgress,
    CompileStatus,
    Throttle,
    parse_go_list_deps,
)

#: ``go list -deps -f GO_LIST_FORMAT``: two standard packages are cached, one is not
#: (archive/tar was never needed before), two of the module's are not, one is, and the command
#: is compiled already (only its link is left).
GO_LIST = """\
errors true false
internal/bytealg true false
archive/tar true true build ID mismatch
github.com/Masterminds/semver/v3 false true not installed
github.com/gofrs/flock false true stale dependency: github.com/gofrs/flock/internal
github.com/pkg/errors false false
helm.sh/helm/v3/cmd/helm false true not installed but available in build cache
"""

#: What ``go build -v`` printed on stderr, with a download and a compiler error mixed in.
GO_BUILD_V = [
    "go: downloading github.com/gofrs/flock v0.13.0",
    "archive/tar",
    "github.com/Masterminds/semver/v3",
    "# github.com/gofrs/flock",
    "flock.go:12:2: undefined: lockFile",
    "",
    "github.com/gofrs/flock",
]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def compile_lines(plan: CompilePlan, lines: Iterable[tuple[float, str]]) -> list[CompileStatus]:
    """Feed timestamped ``-v`` lines (seconds after the start) and keep each status."""
    clock = Clock()
    progress = CompileProgress(plan, clock=clock)
    statuses = []
    for at, line in lines:
        clock.now = 100.0 + at
        if progress.observe(line):
            statuses.append(progress.status())
    return statuses


def plan_of(count: int) -> CompilePlan:
    return CompilePlan(packages=count * 2, to_compile=frozenset(f"p/{i}" for i in range(count)))


def test_the_total_counts_only_the_packages_missing_from_gos_build_cache() -> None:
    plan = parse_go_list_deps(GO_LIST + "go: warning about nothing\n\n")

    assert plan.packages == 7
    assert plan.to_compile == {
        "archive/tar",
        "github.com/Masterminds/semver/v3",
        "github.com/gofrs/flock",
    }
    assert plan.describe() == "3 of 7 packages to compile (4 already in Go's build cache)"


def test_a_build_whose_packages_are_all_cached_says_it_only_links() -> None:
    plan = parse_go_list_deps(
        "errors true false\ncmd/x false true " + "not installed but available in build cache\n"
    )

    assert plan.describe() == "all 2 packages are in Go's build cache; linking"


def test_each_package_go_build_names_counts_once_and_other_lines_do_not() -> None:
    plan = parse_go_list_deps(GO_LIST)
    statuses = compile_lines(
        plan, [(i, line) for i, line in enumerate([*GO_BUILD_V, "archive/tar"])]
    )

    assert [(s.compiled, s.total, s.package) for s in statuses] == [
        (1, 3, "archive/tar"),
        (2, 3, "github.com/Masterminds/semver/v3"),
        (3, 3, "github.com/gofrs/flock"),
    ]


def test_the_estimate_is_the_rate_so_far_applied_to_the_packages_left() -> None:
    [*_, status] = compile_lines(plan_of(30), [(2.0 * (i + 1), f"p/{i}") for i in range(10)])

    assert status.remaining_s == 40.0  # 10 packages in 20 s, 20 to go
    assert status.describe() == "compiled 10/30 packages, 20s elapsed, ~40s left"


def test_there_is_no_estimate_before_a_few_packages_and_seconds() -> None:
    statuses = compile_lines(plan_of(30), [(0.5 * (i + 1), f"p/{i}") for i in range(6)])

    assert all(status.remaining_s is None for status in statuses)
    assert statuses[-1].describe() == "compiled 6/30 packages, 3s elapsed, estimating"


def test_long_builds_show_minutes_and_the_end_says_linking() -> None:
    statuses = compile_lines(plan_of(628), [(0.39 * (i + 1), f"p/{i}") for i in range(628)])

    assert statuses[99].describe() == "compiled 100/628 packages, 39s elapsed, ~3m26s left"
    assert statuses[-1].describe() == "compiled 628/628 packages, 4m05s elapsed; linking"


def test_a_package_go_list_called_cached_does_not_push_the_count_past_the_total() -> None:
    statuses = compile_lines(plan_of(2), [(1.0, "p/0"), (2.0, "cached/pkg"), (3.0, "p/1")])

    assert [(s.compiled, s.total) for s in statuses] == [(1, 2), (2, 2)]


def test_in_a_log_a_line_appears_at_most_every_interval_plus_the_first_and_the_last() -> None:
    clock = Clock()
    written: list[CompileStatus] = []
    throttle = Throttle(written.append, interval_s=10.0, clock=clock)
    progress = CompileProgress(plan_of(60), clock=clock)

    for i in range(60):  # one package a second
        clock.now += 1.0
        progress.observe(f"p/{i}")
        throttle.offer(progress.status())

    assert [status.compiled for status in written] == [1, 11, 21, 31, 41, 51, 60]
    assert written[-1].describe().endswith("; linking")


def test_one_log_throttle_serves_several_builds_in_a_row() -> None:
    clock = Clock()
    written: list[CompileStatus] = []
    throttle = Throttle(written.append, interval_s=10.0, clock=clock)
    for _build in ("kube-apiserver", "etcd"):
        progress = CompileProgress(plan_of(3), clock=clock)
        for i in range(3):
            clock.now += 0.5
            progress.observe(f"p/{i}")
            throttle.offer(progress.status())

    assert [(s.compiled, s.done) for s in written] == [(1, False), (3, True), (1, False), (3, True)]


def test_helm_is_built_from_its_own_module_with_its_makefiles_version_stamps() -> None:
    upstream = "module helm.sh/helm/v3\n\ngo 1.26.0\n\nrequire (\n\tk8s.io/client-go v0.37.0\n)\n"
    ldflags = helm_version_ldflags(parse_client_go_minor(upstream))

    assert "require helm.sh/helm/v3 v3.22.0" in release_wrapper_gomod(HELM, upstream)
    assert "-X helm.sh/helm/v3/internal/version.version=v3.22.0" in ldflags
    assert "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" in ldflags


def test_dev_build_names_every_binary_flux_included_and_builds_nothing_twice() -> None:
    first = CliRunner().invoke(dev_app, ["build"])  # builds what is missing (CI: nothing)
    again = CliRunner().invoke(dev_app, ["build"])

    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert str(helm_path()) in again.output.replace("\n", "")  # Rich may wrap a long path
    for release in FLUX_CONTROLLERS:
        assert str(release.path) in again.output.replace("\n", "")
    assert "Compiling" not in again.output  # cached: no step compiles
