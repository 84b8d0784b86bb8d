"""Progress of a ``go build``: packages compiled out of those Go must compile, and an estimate.

Why: the first build of kube-apiserver runs for minutes, and one line saying "the first build
takes minutes" cannot tell a slow build from a stuck one. Go gives two honest numbers:

* ``go list -deps -f '{{.ImportPath}} {{.Standard}} {{.Stale}} {{.StaleReason}}' PKG`` (with
  the build's own flags) names every package in the build and whether Go's build cache already
  holds it compiled (``Stale`` is false then, or the reason says the cache has it: a command is
  always "not installed", as ``go build -o`` never installs);
* ``go build -v`` prints the import path of each package as it compiles it, and prints nothing
  for a package it takes from the cache.

So the total is the number of *stale* packages, the count rises by one for each stale package
``-v`` names, and a rate (packages per second so far) gives the estimate. Packages differ in
cost, so the estimate is labelled with ``~``; the final link is not a package and is reported
as "linking" once every package is compiled.

Everything here is pure (a clock is passed in), so tests feed it recorded ``-v`` lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: Seconds between two progress lines in a log (no terminal): often enough to show life,
#: rare enough that a ten-minute build writes about sixty lines.
LOG_INTERVAL_S = 10.0

#: The estimate is shown only after this many packages and seconds: before that a rate
#: measured on the first few (small, standard library) packages says little.
_MIN_PACKAGES_FOR_ESTIMATE = 5
_MIN_SECONDS_FOR_ESTIMATE = 5.0


@dataclass(frozen=True)
class CompilePlan:
    """What one ``go build`` will compile, from ``go list -deps``.

    Attributes:
        packages: How many packages the build needs, the standard library included.
        to_compile: Import paths of the packages that are not in Go's build cache.
    """

    packages: int
    to_compile: frozenset[str]

    def describe(self) -> str:
        """One sentence for the step line, saying what the count means."""
        cached = self.packages - len(self.to_compile)
        if not self.to_compile:
            return f"all {self.packages} packages are in Go's build cache; linking"
        return (
            f"{len(self.to_compile)} of {self.packages} packages to compile "
            f"({cached} already in Go's build cache)"
        )


#: The ``go list`` template :func:`parse_go_list_deps` reads.
GO_LIST_FORMAT = "{{.ImportPath}} {{.Standard}} {{.Stale}} {{.StaleReason}}"

#: The ``StaleReason`` of a package whose compiled form is in the cache (a command's, which
#: ``go build -o`` links but never installs).
_IN_BUILD_CACHE = "not installed but available in build cache"


def parse_go_list_deps(output: str) -> CompilePlan:
    """Read the lines ``go list -deps -f GO_LIST_FORMAT`` prints.

    Lines without a ``true``/``false`` third field (a warning, an empty line) are skipped.
    """
    packages = 0
    stale: set[str] = set()
    for line in output.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) < 3 or fields[2] not in ("true", "false"):
            continue
        packages += 1
        reason = fields[3] if len(fields) == 4 else ""
        if fields[2] == "true" and not reason.startswith(_IN_BUILD_CACHE):
            stale.add(fields[0])
    return CompilePlan(packages=packages, to_compile=frozenset(stale))


@dataclass(frozen=True)
class CompileStatus:
    """A snapshot of a running build, ready to print.

    Attributes:
        compiled: Packages compiled so far.
        total: Packages to compile.
        elapsed_s: Seconds since compiling started.
        remaining_s: Estimated seconds until every package is compiled; None while too early.
        package: The package compiled last ("" before the first).
    """

    compiled: int
    total: int
    elapsed_s: float
    remaining_s: float | None
    package: str = ""

    @property
    def done(self) -> bool:
        """Every package is compiled; only the link (or nothing) is left."""
        return self.compiled >= self.total

    def describe(self) -> str:
        """E.g. ``compiled 120/628 packages, 1m05s elapsed, ~4m10s left``."""
        head = (
            f"compiled {self.compiled}/{self.total} packages, {_duration(self.elapsed_s)} elapsed"
        )
        if self.done:
            return f"{head}; linking"
        if self.remaining_s is None:
            return f"{head}, estimating"
        return f"{head}, ~{_duration(self.remaining_s)} left"


@dataclass
class CompileProgress:
    """Counts the packages ``go build -v`` names against a :class:`CompilePlan`.

    Example:
        >>> plan = CompilePlan(packages=3, to_compile=frozenset({"a", "b"}))
        >>> progress = CompileProgress(plan, clock=lambda: 0.0)
        >>> progress.observe("go: downloading a v1"), progress.observe("a")
        (False, True)
        >>> progress.status().describe()
        'compiled 1/2 packages, 0s elapsed, estimating'
    """

    plan: CompilePlan
    clock: Callable[[], float]
    started: float = field(init=False)
    _seen: set[str] = field(init=False, default_factory=set)
    _last: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.started = self.clock()

    def observe(self, line: str) -> bool:
        """Take one line of ``go build -v``'s stderr; True when it names a package to compile.

        Only the plan's packages count, each once: "go: downloading ...", compiler errors
        ("# pkg", "file.go:3:1: ...") and blank lines do not, so the count never passes the
        total.
        """
        name = line.strip()
        if name not in self.plan.to_compile or name in self._seen:
            return False
        self._seen.add(name)
        self._last = name
        return True

    def status(self) -> CompileStatus:
        """Where the build is now."""
        compiled = len(self._seen)
        total = len(self.plan.to_compile)
        elapsed = max(self.clock() - self.started, 0.0)
        remaining: float | None = None
        if compiled >= _MIN_PACKAGES_FOR_ESTIMATE and elapsed >= _MIN_SECONDS_FOR_ESTIMATE:
            remaining = (total - compiled) * elapsed / compiled
        return CompileStatus(compiled, total, elapsed, remaining, self._last)


@dataclass
class Throttle:
    """Lets a status through at most once per ``interval_s``, plus each build's first and last.

    For logs without a terminal, where a live line would become one line per package. One
    throttle serves several builds in a row: a status whose elapsed time is below the previous
    one's starts a new build.
    """

    emit: Callable[[CompileStatus], None]
    interval_s: float
    clock: Callable[[], float]
    _emitted_at: float | None = field(init=False, default=None)
    _previous: CompileStatus | None = field(init=False, default=None)

    def offer(self, status: CompileStatus) -> None:
        """Emit ``status`` when it starts or finishes a build, or ``interval_s`` has passed."""
        previous, self._previous = self._previous, status
        now = self.clock()
        starts = previous is None or status.elapsed_s < previous.elapsed_s
        finishes = status.done and (starts or previous is None or not previous.done)
        due = self._emitted_at is None or now - self._emitted_at >= self.interval_s
        if starts or finishes or (due and not status.done):
            self._emitted_at = now
            self.emit(status)


def _duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``1h02m``: short enough for a progress line."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
