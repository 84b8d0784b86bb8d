"""Build Kubernetes, etcd, kwok, helm, Flux and Toxiproxy from source through the module proxy.

Why build instead of download: the Go module proxy is the one software source we can rely on
for Kubernetes here, and a build from the tagged modules is exactly the released code.

``k8s.io/kubernetes`` is not meant to be used as a module: its ``go.mod`` points every
``k8s.io/*`` staging module at a local ``./staging/src/...`` directory, which does not exist in
the proxied copy. A small generated *wrapper module* fixes that with one ``replace`` line per
staging module, mapping it to its published ``v0.x.y`` twin. The list is derived from the real
``go.mod`` of the pinned release, so a version bump needs no hand-edited list. One wrapper
builds the three commands the cluster runs from that module: ``kube-apiserver``,
``kube-controller-manager`` and ``kube-scheduler`` (they share most packages, so the second
and third compile only what is theirs). kwok, the Kubernetes project's simulator of nodes
and their pods, is a :class:`GoRelease` like Flux's controllers. etcd gets its
own wrapper whose ``main.go`` calls ``etcdmain.Main``, as etcd's own ``main`` does. Helm (for
the chart under ``deploy/helm/``) needs no fix: its wrapper only pins ``helm.sh/helm/v3``, and the
version stamps of Helm's own Makefile are passed to the linker.
Flux's ``source-controller`` and ``kustomize-controller`` (for ``autopilot dev up --gitops``)
are built the same way (:class:`GoRelease`, :func:`build_release`), their wrappers repeating
the ``replace`` lines of their own ``go.mod``, which Go obeys in the main module only.
Toxiproxy's server (for the fault-injection tests) is one more :class:`GoRelease`.

Each compile reports progress (see :mod:`devcluster.compile_progress`): the packages compiled
out of those not yet in Go's build cache, the time elapsed and an estimate.

Binaries go to ``${XDG_CACHE_HOME:-~/.cache}/autopilot/bin/<component>-<version>/``; a build
writes to a temporary name and renames, so a present binary is always a complete one and a
second run costs nothing. Go's module and build caches are left alone: they make rebuilds fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devcluster import paths
from devcluster.compile_progress import (
    GO_LIST_FORMAT,
    CompilePlan,
    CompileProgress,
    CompileStatus,
    parse_go_list_deps,
)
from devcluster.versions import (
    ETCD_VERSION,
    FLUX_KUSTOMIZE_CONTROLLER_VERSION,
    FLUX_SOURCE_CONTROLLER_VERSION,
    HELM_VERSION,
    KUBERNETES_STAGING_VERSION,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    MINIMUM_GO,
    TOXIPROXY_VERSION,
)

#: Called with one line of text while a build runs (for a spinner or a log).
ProgressCallback = Callable[[str], None]

#: Called each time ``go build`` compiles a package (for a progress line).
CompileCallback = Callable[[CompileStatus], None]

_KUBERNETES_MODULE = "k8s.io/kubernetes"
_ETCD_MODULE = "go.etcd.io/etcd/server/v3"
_HELM_MODULE = "helm.sh/helm/v3"
_CLIENT_GO_REQUIRE = re.compile(r"^\s*(?:require\s+)?k8s\.io/client-go\s+v0\.(\d+)\.", re.MULTILINE)
_STAGING_REPLACE = re.compile(r"^\s*(?:replace\s+)?(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/src/\S+")
_REPLACE = re.compile(
    r"^\s*(?:replace\s+)?(?P<old>[^\s()]+)(?:\s+(?P<old_version>v\S+))?\s+=>\s+"
    r"(?P<new>\S+)(?:\s+(?P<new_version>v\S+))?\s*(?://.*)?$"
)
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_GO_VERSION = re.compile(r"go(\d+)\.(\d+)")


@dataclass(frozen=True)
class _Reporter:
    step: ProgressCallback
    output: ProgressCallback
    compiled: CompileCallback

    @classmethod
    def of(
        cls,
        progress: ProgressCallback | None,
        output: ProgressCallback | None,
        compiled: CompileCallback | None,
    ) -> _Reporter:
        """Fill in what the caller left out; compile progress falls back to ``output``."""
        out = output or _ignore

        def as_text(status: CompileStatus) -> None:
            out(status.describe())

        return cls(progress or _ignore, out, compiled or as_text)


def _ignore(_line: str) -> None:
    """Discard a progress line."""


class BuildError(RuntimeError):
    """A binary could not be built; the message says what failed and what to do."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the built binaries the cluster runs."""

    kube_apiserver: Path
    etcd: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path

    def all(self) -> tuple[Path, ...]:
        """Every path, in build order."""
        return (
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.etcd,
            self.kwok,
        )


@dataclass(frozen=True)
class GoRelease:
    """A Go command built from its own release module, with that release's dependency pins.

    Attributes:
        name: The command's name: the binary's file name and the cache directory's prefix.
        module: The release module, e.g. ``github.com/fluxcd/source-controller``.
        version: The release, e.g. ``v1.9.3``.
        package: The command's main package inside ``module``.
        stamps: The ``-ldflags`` for the release's go.mod text (version stamps, as the
            project's own build passes them); none by default.
    """

    name: str
    module: str
    version: str
    package: str
    stamps: Callable[[str], str] = field(default=lambda _gomod: "", compare=False, repr=False)

    @property
    def path(self) -> Path:
        """Where the built binary is cached: ``bin/<name>-<version>/<name>``."""
        return paths.cache_root() / "bin" / f"{self.name}-{self.version}" / self.name

    @property
    def what(self) -> str:
        """The name and version, as progress lines say it."""
        return f"{self.name} {self.version}"


#: Helm's command (for the chart's tests).
HELM = GoRelease(
    "helm",
    _HELM_MODULE,
    HELM_VERSION,
    f"{_HELM_MODULE}/cmd/helm",
    stamps=lambda gomod: helm_version_ldflags(parse_client_go_minor(gomod)),
)

#: Flux's source-controller: fetches git repositories and serves them as artifacts.
FLUX_SOURCE_CONTROLLER = GoRelease(
    "source-controller",
    "github.com/fluxcd/source-controller",
    FLUX_SOURCE_CONTROLLER_VERSION,
    "github.com/fluxcd/source-controller",
)

#: Flux's kustomize-controller: applies the artifacts' manifests with server-side apply.
FLUX_KUSTOMIZE_CONTROLLER = GoRelease(
    "kustomize-controller",
    "github.com/fluxcd/kustomize-controller",
    FLUX_KUSTOMIZE_CONTROLLER_VERSION,
    "github.com/fluxcd/kustomize-controller",
)

#: The Flux controllers ``autopilot dev up --gitops`` runs, in start order.
FLUX_CONTROLLERS = (FLUX_SOURCE_CONTROLLER, FLUX_KUSTOMIZE_CONTROLLER)

_TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"

#: Toxiproxy's server: a TCP proxy whose faults (toxics) are set over its HTTP API.
TOXIPROXY = GoRelease(
    "toxiproxy-server",
    _TOXIPROXY_MODULE,
    TOXIPROXY_VERSION,
    f"{_TOXIPROXY_MODULE}/cmd/server",
    stamps=lambda _gomod: f"-X {_TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}",
)


#: kwok: plays the kubelet of a few fake nodes (their heartbeats, their pods' status).
KWOK = GoRelease("kwok", "sigs.k8s.io/kwok", KWOK_VERSION, "sigs.k8s.io/kwok/cmd/kwok")

#: The commands built from ``k8s.io/kubernetes``, in build order.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def kubernetes_command_path(command: str) -> Path:
    """Return where the pinned build of a ``k8s.io/kubernetes`` command is cached."""
    return paths.kubernetes_bin_dir() / command


def kube_apiserver_path() -> Path:
    """Return where the pinned ``kube-apiserver`` binary is cached."""
    return kubernetes_command_path("kube-apiserver")


def _wanted_binaries() -> Binaries:
    return Binaries(
        kube_apiserver=kube_apiserver_path(),
        etcd=etcd_path(),
        kube_controller_manager=kubernetes_command_path("kube-controller-manager"),
        kube_scheduler=kubernetes_command_path("kube-scheduler"),
        kwok=KWOK.path,
    )


def etcd_path() -> Path:
    """Return where the pinned ``etcd`` binary is cached."""
    return paths.etcd_bin_dir() / "etcd"


def helm_path() -> Path:
    """Return where the pinned ``helm`` binary is cached."""
    return HELM.path


def cached_binaries() -> Binaries | None:
    """Return the cached binaries if all are present, without building anything."""
    binaries = _wanted_binaries()
    if all(_is_executable(path) for path in binaries.all()):
        return binaries
    return None


def ensure_binaries(
    progress: ProgressCallback | None = None,
    *,
    output: ProgressCallback | None = None,
    compiled: CompileCallback | None = None,
    force: bool = False,
) -> Binaries:
    """Return the pinned binaries, building whichever is missing.

    Args:
        progress: Receives the name of each build step.
        output: Receives each line Go prints (downloads, compiler messages).
        compiled: Receives the progress after each compiled package (default: as text to
            ``output``).
        force: Rebuild even when a cached binary exists.

    Returns:
        Paths of the Kubernetes commands, ``etcd`` and ``kwok``.

    Raises:
        BuildError: Go is missing or too old, or a ``go`` command failed.
    """
    report = _Reporter.of(progress, output, compiled)
    wanted = _wanted_binaries()
    if not force and cached_binaries() is not None:
        return wanted
    go = find_go()
    with _build_lock():
        missing = [
            command
            for command in KUBERNETES_COMMANDS
            if force or not _is_executable(kubernetes_command_path(command))
        ]
        if missing:
            build_kubernetes(go, report, missing)
        if force or not _is_executable(wanted.etcd):
            build_etcd(go, report)
        if force or not _is_executable(wanted.kwok):
            build_release(go, KWOK, report)
    return wanted


def ensure_helm(
    progress: ProgressCallback | None = None,
    *,
    output: ProgressCallback | None = None,
    compiled: CompileCallback | None = None,
    force: bool = False,
) -> Path:
    """Return the pinned ``helm``, building it when it is missing.

    Apart from the cluster's binaries because the cluster does not need it: only the chart's
    tests and ``autopilot dev build`` (which CI runs) do.

    Raises:
        BuildError: Go is missing or too old, or a ``go`` command failed.
    """
    return ensure_releases([HELM], progress, output=output, compiled=compiled, force=force)[
        HELM.name
    ]


def ensure_flux(
    progress: ProgressCallback | None = None,
    *,
    output: ProgressCallback | None = None,
    compiled: CompileCallback | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Return the pinned Flux controllers by name, building whichever is missing.

    Apart from the cluster's binaries because only ``autopilot dev up --gitops``, the GitOps
    tests and ``autopilot dev build`` (which CI runs) need them.

    Raises:
        BuildError: Go is missing or too old, or a ``go`` command failed.
    """
    return ensure_releases(
        FLUX_CONTROLLERS, progress, output=output, compiled=compiled, force=force
    )


def ensure_toxiproxy(
    progress: ProgressCallback | None = None,
    *,
    output: ProgressCallback | None = None,
    compiled: CompileCallback | None = None,
    force: bool = False,
) -> Path:
    """Return the pinned ``toxiproxy-server``, building it when it is missing.

    Only the fault-injection tests (``tests/reliability/test_faults_*``) and ``autopilot dev
    build`` need it.

    Raises:
        BuildError: Go is missing or too old, or a ``go`` command failed.
    """
    return ensure_releases([TOXIPROXY], progress, output=output, compiled=compiled, force=force)[
        TOXIPROXY.name
    ]


def ensure_releases(
    releases: Sequence[GoRelease],
    progress: ProgressCallback | None = None,
    *,
    output: ProgressCallback | None = None,
    compiled: CompileCallback | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Return each release's cached binary by name, building the ones that are missing.

    Raises:
        BuildError: Go is missing or too old, or a ``go`` command failed.
    """
    wanted = {release.name: release.path for release in releases}
    if not force and all(_is_executable(path) for path in wanted.values()):
        return wanted
    go = find_go()
    report = _Reporter.of(progress, output, compiled)
    with _build_lock():
        for release in releases:
            if force or not _is_executable(release.path):
                build_release(go, release, report)
    return wanted


def find_go() -> str:
    """Return the ``go`` executable, checking that it is new enough.

    Raises:
        BuildError: ``go`` is not on ``PATH`` or older than the pinned Kubernetes needs.
    """
    minimum = ".".join(str(part) for part in MINIMUM_GO)
    go = shutil.which("go")
    if go is None:
        raise BuildError(f"go not found: install Go {minimum}+ and put it on PATH")
    try:
        output = subprocess.run(
            [go, "version"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise BuildError(f"could not run '{go} version': {error}") from error
    match = _GO_VERSION.search(output)
    if match is None:
        raise BuildError(f"could not read the Go version from {output.strip()!r}")
    found = (int(match.group(1)), int(match.group(2)))
    if found < MINIMUM_GO:
        raise BuildError(
            f"Go {found[0]}.{found[1]} is too old to build Kubernetes {KUBERNETES_VERSION}: "
            f"install Go {minimum}+"
        )
    return go


def build_kubernetes(go: str, report: _Reporter, commands: Sequence[str]) -> list[Path]:
    """Build the pinned ``k8s.io/kubernetes`` commands into the cache; return their paths.

    Raises:
        BuildError: A ``go`` command failed.
    """
    workdir = paths.cache_root() / "build" / f"k8s-{KUBERNETES_VERSION}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "build.log"
    log.write_text("")
    module = f"{_KUBERNETES_MODULE}@{KUBERNETES_VERSION}"
    report.step(f"Reading the go.mod of {module}")
    info = _go_json(go, ["mod", "download", "-json", module], workdir, log, report)
    upstream_gomod = Path(str(info["GoMod"])).read_text()
    staging = parse_staging_modules(upstream_gomod)
    if not staging:
        raise BuildError(f"found no staging modules in the go.mod of {module}")
    (workdir / "go.mod").write_text(
        kubernetes_wrapper_gomod(staging, go_directive=parse_go_directive(upstream_gomod))
    )
    imports = "".join(f'\t_ "k8s.io/kubernetes/cmd/{name}"\n' for name in KUBERNETES_COMMANDS)
    (workdir / "tools.go").write_text(
        "//go:build tools\n\n"
        "// Package tools pins the Kubernetes commands so that 'go mod tidy' keeps them.\n"
        "package tools\n\n"
        f"import (\n{imports})\n"
    )
    report.step(f"Resolving dependencies of {module} ({len(staging)} staging modules)")
    _go(go, ["mod", "tidy"], workdir, log, report)
    built = []
    for command in commands:
        target = kubernetes_command_path(command)
        _go_build(
            go,
            target,
            f"k8s.io/kubernetes/cmd/{command}",
            workdir,
            log,
            report,
            what=f"{command} {KUBERNETES_VERSION}",
            ldflags=_kubernetes_version_ldflags(),
        )
        built.append(target)
    return built


def build_etcd(go: str, report: _Reporter) -> Path:
    """Build the pinned ``etcd`` into the cache and return its path.

    Raises:
        BuildError: A ``go`` command failed.
    """
    workdir = paths.cache_root() / "build" / f"etcd-{ETCD_VERSION}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "build.log"
    log.write_text("")
    (workdir / "go.mod").write_text(etcd_wrapper_gomod())
    (workdir / "main.go").write_text(
        "// Command etcd runs etcd's own entry point, exactly as etcd's main package does.\n"
        "package main\n\n"
        'import (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() {\n\tetcdmain.Main(os.Args)\n}\n"
    )
    report.step(f"Resolving dependencies of {_ETCD_MODULE}@{ETCD_VERSION}")
    _go(go, ["mod", "tidy"], workdir, log, report)
    target = etcd_path()
    _go_build(go, target, ".", workdir, log, report, what=f"etcd {ETCD_VERSION}")
    return target


def build_helm(go: str, report: _Reporter) -> Path:
    """Build the pinned ``helm`` into the cache and return its path.

    Raises:
        BuildError: A ``go`` command failed.
    """
    return build_release(go, HELM, report)


def build_release(go: str, release: GoRelease, report: _Reporter) -> Path:
    """Build ``release``'s command into the cache, as its release's ``go.mod`` pins it.

    The wrapper module requires the release and repeats its ``replace`` lines (Go obeys only
    the main module's), with each local ``./dir`` replacement pointing at the published
    module of the same release instead (see :func:`release_wrapper_gomod`).

    Raises:
        BuildError: A ``go`` command failed.
    """
    workdir = paths.cache_root() / "build" / f"{release.name}-{release.version}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "build.log"
    log.write_text("")
    module = f"{release.module}@{release.version}"
    report.step(f"Reading the go.mod of {module}")
    info = _go_json(go, ["mod", "download", "-json", module], workdir, log, report)
    upstream_gomod = Path(str(info["GoMod"])).read_text()
    (workdir / "go.mod").write_text(release_wrapper_gomod(release, upstream_gomod))
    (workdir / "tools.go").write_text(
        "//go:build tools\n\n"
        f"// Package tools pins the {release.name} command so that 'go mod tidy' keeps it.\n"
        "package tools\n\n"
        f'import _ "{release.package}"\n'
    )
    report.step(f"Resolving dependencies of {module}")
    _go(go, ["mod", "tidy"], workdir, log, report)
    _go_build(
        go,
        release.path,
        release.package,
        workdir,
        log,
        report,
        what=release.what,
        ldflags=release.stamps(upstream_gomod),
    )
    return release.path


def parse_staging_modules(gomod: str) -> list[str]:
    """Return the ``k8s.io/*`` modules that a Kubernetes ``go.mod`` maps to ``./staging``.

    Both the block form (``replace ( ... )``) and one-line ``replace`` statements are read.
    """
    modules = [
        match.group(1)
        for line in gomod.splitlines()
        if (match := _STAGING_REPLACE.match(line)) is not None
    ]
    return sorted(set(modules))


def parse_go_directive(gomod: str, default: str = "1.26.0") -> str:
    """Return the version in a ``go.mod``'s ``go`` directive (``default`` when absent)."""
    match = _GO_DIRECTIVE.search(gomod)
    return match.group(1) if match else default


def kubernetes_wrapper_gomod(staging: Sequence[str], *, go_directive: str) -> str:
    """Return the wrapper ``go.mod`` that makes ``k8s.io/kubernetes`` buildable as a dependency.

    Args:
        staging: Staging module paths, e.g. ``k8s.io/api``.
        go_directive: The ``go`` version line to declare.
    """
    lines = [
        "module autopilot.local/kube-apiserver-build",
        "",
        f"go {go_directive}",
        "",
        f"require {_KUBERNETES_MODULE} {KUBERNETES_VERSION}",
        "",
    ]
    lines += [f"replace {module} => {module} {KUBERNETES_STAGING_VERSION}" for module in staging]
    return "\n".join(lines) + "\n"


def etcd_wrapper_gomod() -> str:
    """Return the wrapper ``go.mod`` that builds etcd's server entry point."""
    return (
        "module autopilot.local/etcd-build\n\n"
        f"go {MINIMUM_GO[0]}.{MINIMUM_GO[1]}\n\n"
        f"require {_ETCD_MODULE} {ETCD_VERSION}\n"
    )


def parse_replaces(gomod: str) -> list[tuple[str, str]]:
    """Return a ``go.mod``'s ``replace`` directives as ``(left side, right side)`` pairs.

    Both the block form and one-line statements are read; each side keeps its version, if
    any (``example.com/a v1.0.0``, ``example.com/b v1.2.0``, or a path like ``./api``).
    """
    pairs = []
    for line in gomod.splitlines():
        match = _REPLACE.match(line)
        if match is None:
            continue
        old = " ".join(part for part in match.group("old", "old_version") if part)
        new = " ".join(part for part in match.group("new", "new_version") if part)
        pairs.append((old, new))
    return pairs


def release_wrapper_gomod(release: GoRelease, upstream_gomod: str) -> str:
    """Return the wrapper ``go.mod`` that builds ``release`` exactly as its own pins say.

    A dependency's ``replace`` lines are ignored by Go, so the wrapper repeats them. A local
    one (``github.com/fluxcd/source-controller/api => ./api``) names a directory of the
    release's repository, at the release's tag; the wrapper points it at the published module
    of the same version instead, which holds the same files.
    """
    lines = [
        f"module autopilot.local/{release.name}-build",
        "",
        f"go {parse_go_directive(upstream_gomod)}",
        "",
        f"require {release.module} {release.version}",
    ]
    replaces = []
    for old, new in parse_replaces(upstream_gomod):
        if new.startswith(("./", "../")):
            new = f"{old.split()[0]} {release.version}"
        replaces.append(f"replace {old} => {new}")
    if replaces:
        lines += ["", *replaces]
    return "\n".join(lines) + "\n"


def parse_client_go_minor(gomod: str) -> int:
    """Return the minor of ``k8s.io/client-go v0.<minor>.x`` that a ``go.mod`` requires.

    Raises:
        BuildError: The ``go.mod`` requires no ``k8s.io/client-go``.
    """
    match = _CLIENT_GO_REQUIRE.search(gomod)
    if match is None:
        raise BuildError(f"{_HELM_MODULE} {HELM_VERSION} requires no k8s.io/client-go")
    return int(match.group(1))


def helm_version_ldflags(client_go_minor: int) -> str:
    """Stamp what Helm's own Makefile stamps, so ``helm version`` and its defaults are right.

    The Kubernetes version (``client-go v0.N`` is Kubernetes ``1.N``) is what ``helm template``
    offers charts as ``.Capabilities.KubeVersion`` and what ``helm lint`` checks APIs against.
    """
    stamps = {
        "helm.sh/helm/v3/internal/version.version": HELM_VERSION,
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor": str(client_go_minor),
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": str(client_go_minor),
    }
    return " ".join(f"-X {name}={value}" for name, value in stamps.items())


def _kubernetes_version_ldflags() -> str:
    """Stamp the release version, as Kubernetes' own build does, so clients see v1.37.x.

    Only the linker reads ``-X``, so this keeps Go's compile cache valid.
    """
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    package = "k8s.io/component-base/version"
    stamps = {
        "gitVersion": KUBERNETES_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    return " ".join(f"-X {package}.{name}={value}" for name, value in stamps.items())


def _go_build(
    go: str,
    target: Path,
    package: str,
    workdir: Path,
    log: Path,
    report: _Reporter,
    *,
    what: str,
    ldflags: str = "",
) -> None:
    """Run ``go build -v`` into a temporary file, then move it into place atomically.

    ``go list`` first counts the packages missing from Go's build cache (with the same flags,
    so the count is the build's own), then each package ``-v`` names advances the progress.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    flags = ["-trimpath"]
    if ldflags:
        flags += ["-ldflags", ldflags]
    report.step(f"Listing the packages of {what}")
    plan = _compile_plan(go, flags, package, workdir, log, report)
    report.step(f"Compiling {what}: {plan.describe()}")
    progress = CompileProgress(plan, clock=time.monotonic)

    def on_line(line: str) -> None:
        if progress.observe(line):
            report.compiled(progress.status())
        else:
            report.output(line)

    try:
        _go(go, ["build", "-v", *flags, "-o", str(partial), package], workdir, log, report, on_line)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _compile_plan(
    go: str, flags: list[str], package: str, workdir: Path, log: Path, report: _Reporter
) -> CompilePlan:
    """Ask ``go list`` which packages the build needs and which are not compiled yet."""
    listing = ["list", "-deps", *flags, "-f", GO_LIST_FORMAT, package]
    return parse_go_list_deps(_go(go, listing, workdir, log, report))


def _go_json(
    go: str, args: list[str], workdir: Path, log: Path, report: _Reporter
) -> dict[str, object]:
    """Run a ``go`` command that prints one JSON object and return it."""
    output = _go(go, args, workdir, log, report)
    try:
        decoded = json.loads(output)
    except json.JSONDecodeError as error:
        raise BuildError(f"'go {' '.join(args)}' printed no JSON (see {log})") from error
    if not isinstance(decoded, dict) or "Error" in decoded:
        raise BuildError(f"'go {' '.join(args)}' failed: {decoded}")
    return decoded


def _go(
    go: str,
    args: list[str],
    workdir: Path,
    log: Path,
    report: _Reporter,
    on_line: ProgressCallback | None = None,
) -> str:
    """Run ``go`` in ``workdir``, streaming stderr to ``log`` and ``on_line``; return stdout.

    ``on_line`` defaults to ``report.output``.

    Raises:
        BuildError: The command exited non-zero; the message holds the end of its output.
    """
    env = dict(os.environ, GOWORK="off", GOFLAGS=_without_mod_flag(os.environ.get("GOFLAGS")))
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=15)
    # stdout goes to a file, not a pipe: 'go list -deps' prints more than a pipe holds while
    # this loop is still reading stderr, and both would wait for ever.
    with log.open("a") as log_file, tempfile.TemporaryFile("w+") as stdout_file:
        log_file.write(f"$ go {' '.join(args)}\n")
        log_file.flush()
        process = subprocess.Popen(
            [go, *args],
            cwd=workdir,
            env=env,
            stdout=stdout_file,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:
            log_file.write(line)
            stripped = line.rstrip()
            if stripped:
                tail.append(stripped)
                (on_line or report.output)(stripped)
        code = process.wait()
        log_file.write(f"# exit {code} after {time.monotonic() - started:.0f}s\n")
        stdout_file.seek(0)
        stdout = stdout_file.read()
    if code != 0:
        details = "\n".join(tail) or "(no output)"
        raise BuildError(
            f"'go {' '.join(args[:2])}' failed in {workdir} (exit {code}); "
            f"full log: {log}\n{details}"
        )
    return stdout


def _without_mod_flag(goflags: str | None) -> str:
    """Drop a ``-mod=...`` from ``GOFLAGS``: the wrapper modules have no vendor directory."""
    return " ".join(flag for flag in (goflags or "").split() if not flag.startswith("-mod="))


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds across processes (e.g. CI and a test session starting together)."""
    lock_path = paths.cache_root() / "build" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
