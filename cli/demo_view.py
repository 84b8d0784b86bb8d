"""How ``autopilot demo`` looks in a terminal: Rich renderables and a live rollout view.

A rollout is told as a log, one timed line per thing a user would care about: the
machine's state changes (with its decision), every analysis (metric values against their
thresholds) and every change of the live VirtualService's weights. On a terminal a panel
with a two-colour traffic bar redraws below the log while the rollout runs; elsewhere (CI,
a pipe) only the log is printed, so the output reads the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.demo_rollout import RELEASES, TEMPORAL_NAMESPACE, Outcome, Release, Weights
from cli.demo_route import EXPECT, SERVICE, NewsReader, RouteOutcome
from models.operator import OperatorStatus
from service import ui_links

#: The visibility query of every canary workflow (the UI's filter).
CANARY_QUERY = 'AutopilotOperator="canary"'
#: Width of the traffic bar, in characters.
BAR_WIDTH = 50
#: Width of the live panel (narrower terminals get their width).
PANEL_WIDTH = 100
#: The canary's step loop: the analysis and weight lines tell it, not the state changes.
_STEP_CYCLE = {"Progressing", "Analysing"}
#: Decisions the log leaves out because another line already says it (weights, analyses).
_SAID_ELSEWHERE = ("routing ", "advancing to weight", "check passed", "check failed")


def short(path: Path) -> str:
    """A path as people write it: ``~/.local/state/...`` under the home directory."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def workflow_url(ui: str, workflow: str) -> str:
    """The Temporal UI page of one workflow."""
    return ui_links.workflow_page(ui, TEMPORAL_NAMESPACE, workflow)


def list_url(ui: str, query: str = CANARY_QUERY) -> str:
    """The Temporal UI's workflow list, filtered by a visibility query."""
    return ui_links.list_page(ui, TEMPORAL_NAMESPACE, query)


def intro(running: bool, state_dir: str, out: Console) -> RenderableType:
    """What the demo is about to do, and what is real (boxed on a terminal only)."""
    where = "the running local cluster" if running else "a local cluster"
    text = Text.assemble(
        ("Autopilot demo", "bold"),
        f": progressive delivery on {where} (state in {state_dir}).\n",
        "Kubernetes, Istio's CRDs, Prometheus and Temporal are real; pods and their traffic are ",
        ("simulated", "bold"),
        ".\nWith kubectl: v1 and its Canary are applied, a healthy v2 is promoted, a faulty v3 "
        "is rolled back,\nthen a new Service, cart, is checked in and gets its route; the "
        "Kubernetes watcher in the demo's\nworker starts each rollout and the route.",
    )
    return Panel(text, expand=False) if out.is_terminal else text


def commands_intro(env_command: str) -> Text:
    """Before the first command: how a shell of the user's gets the same cluster."""
    return Text.assemble(
        "\nThe commands the demo runs are printed with a ",
        ("$", "bold"),
        f"; to type them yourself, point a shell at the cluster first: {env_command}",
    )


def command(line: str) -> Text:
    """A command the demo runs, as a user types it."""
    return Text.assemble(("$ ", "bold"), (line, "bold cyan"))


def command_output(line: str) -> Text:
    """A line a command printed."""
    return Text(f"  {line}", style="dim")


def waiting_for_watcher(revision: str) -> Text:
    """After a release's commands: what is now up to the watcher."""
    return Text(
        f"  the Kubernetes watcher sees pod template {revision} and signals the workflow; "
        "following that rollout:",
        style="dim",
    )


def next_commands(env_command: str, namespace: str) -> str:
    """What a user types next to look at what the demo left (with ``--keep``)."""
    lines = [
        f"  {env_command}",
        f"  kubectl get canary -n {namespace}                # phase, weight, failed checks",
        f"  autopilot status -n {namespace} podinfo          # the last rollout: v3, Failed",
        f"  kubectl autopilot status -n {namespace} podinfo  # the same, as a kubectl plugin",
        "  autopilot list --operator canary --all",
        f"  kubectl get deployments,virtualservices -n {namespace}",
        f"  kubectl set image -n {namespace} deployment/podinfo "
        "podinfod=ghcr.io/stefanprodan/podinfo:6.5.3",
        f"  autopilot watch -n {namespace} podinfo           # the rollout that starts",
        f"  autopilot status autoroute/{namespace}/{SERVICE}      # the route: host, path, check",
    ]
    return "\n".join(lines)


def links(ui: str, workflow: str) -> Text:
    """Where to look at the rollouts in the Temporal UI."""
    page, listing = workflow_url(ui, workflow), list_url(ui)
    return Text.assemble(
        "Temporal UI:      ",
        (ui, f"bold link {ui}"),
        "\nrollout workflow: ",
        (page, f"link {page}"),
        "\nall rollouts:     ",
        (listing, f"link {listing}"),
    )


def release_header(release: Release, namespace: str) -> Text:
    """The line that opens one release."""
    if release is RELEASES[0]:
        return Text.assemble(
            (f"\n{release.label}", "bold"),
            f": Deployment {namespace}/podinfo at {release.tag} ({release.about}) and its "
            "Canary. The canary bootstraps podinfo-primary, the Services and the "
            "VirtualService; the simulator sends traffic through it.",
        )
    return Text.assemble(
        (f"\n{release.label}", "bold"),
        f": podinfo → {release.tag} ({release.about}); expect: {release.expect}",
    )


@dataclass
class RolloutView:
    """The log (and, on a terminal, the live panel) of one rollout; an ``Observer``.

    Attributes:
        out: Where to print.
        release: What is rolled out.
    """

    out: Console
    release: Release
    _state: str | None = None
    _message: str = ""
    _weights: Weights | None = None
    _analysis_at: str | None = None
    _live: Live | None = field(default=None, repr=False)

    def __enter__(self) -> RolloutView:
        if self.out.is_terminal:
            self._live = Live(console=self.out, refresh_per_second=8, transient=True)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, traceback)

    def update(self, status: OperatorStatus, weights: Weights | None, seconds: float) -> None:
        """Print what changed since the last look, and redraw the panel."""
        for line in self._news(status, weights):
            self.out.print(Text(f"  {seconds:5.1f}s  ") + line)
        if self._live is not None:
            width = min(PANEL_WIDTH, self.out.width)
            self._live.update(_panel(status, weights, self.release, seconds, width))

    def _news(self, status: OperatorStatus, weights: Weights | None) -> list[Text]:
        lines: list[Text] = []
        data = status.data
        analysis = data.get("last_analysis")
        if isinstance(analysis, dict) and analysis.get("at") != self._analysis_at:
            lines.append(_analysis_line(analysis, status))
            self._analysis_at = analysis.get("at")
        message = str(data.get("message") or "")
        cycling = {self._state, status.state} <= _STEP_CYCLE
        if status.state != self._state and not cycling:
            moved = f"{self._state} → {status.state}" if self._state else status.state
            lines.append(Text.assemble((moved, "bold"), f"  {message}" if message else ""))
        elif message != self._message and message and not message.startswith(_SAID_ELSEWHERE):
            lines.append(Text(message, style="dim"))
        if weights is not None and weights != self._weights:
            primary, canary = weights
            lines.append(
                Text.assemble(
                    "VirtualService podinfo: ",
                    (f"primary {primary}%", "blue"),
                    " · ",
                    (f"canary {canary}%", "green" if canary else ""),
                )
            )
        self._state, self._message, self._weights = status.state, message, weights
        return lines


def _analysis_line(analysis: dict[str, Any], status: OperatorStatus) -> Text:
    line = Text("analysis: ")
    for index, metric in enumerate(analysis.get("metrics") or []):
        if index:
            line.append(", ")
        line.append_text(metric_text(metric))
    failed = status.data.get("failed_checks")
    threshold = (status.spec.get("analysis") or {}).get("threshold")
    if failed:
        line.append(f"  (failed checks {failed}/{threshold})", style="red")
    return line


def metric_text(metric: dict[str, Any]) -> Text:
    """``request-success-rate 100 ✓ (≥ 99)``: a value against its thresholds."""
    value = metric.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else "no data"
    bounds = ", ".join(
        bound
        for bound in (
            f"≥ {metric['min']:g}" if isinstance(metric.get("min"), int | float) else "",
            f"≤ {metric['max']:g}" if isinstance(metric.get("max"), int | float) else "",
        )
        if bound
    )
    result = str(metric.get("status", ""))
    mark, style = {"pass": ("✓", "green"), "fail": ("✗", "red")}.get(result, ("?", "yellow"))
    return Text.assemble(f"{metric.get('name')} {shown} ", (mark, f"bold {style}"), f" ({bounds})")


def _panel(
    status: OperatorStatus, weights: Weights | None, release: Release, seconds: float, width: int
) -> RenderableType:
    """The live view: state, a two-colour traffic bar, the last analysis, the decision."""
    primary, canary = weights or (100, 0)
    filled = round(BAR_WIDTH * canary / 100)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("state", Text(status.state, style="bold"))
    grid.add_row(
        "traffic",
        Text.assemble(("█" * (BAR_WIDTH - filled), "blue"), ("█" * filled, "green")),
    )
    grid.add_row(
        "", Text.assemble((f"primary {primary}%", "blue"), "   ", (f"canary {canary}%", "green"))
    )
    analysis = status.data.get("last_analysis")
    if isinstance(analysis, dict):
        for metric in analysis.get("metrics") or []:
            grid.add_row("metric", metric_text(metric))
    message = status.data.get("message")
    if message:
        grid.add_row("decision", escape(str(message)))
    title = f"{release.label} ({release.tag}) rollout, {seconds:.0f}s"
    return Panel(grid, title=title, title_align="left", width=width)


def verdict(outcome: Outcome) -> Text:
    """The line that closes one release: did it end as the demo said it would."""
    mark, style = ("✓", "green") if outcome.as_expected else ("✗", "red")
    text = Text.assemble(
        (f"  {mark} {outcome.release.label} {outcome.outcome}", f"bold {style}"),
        f" in {outcome.seconds:.0f}s (state {outcome.state})",
    )
    if outcome.weights:
        text.append(f"; canary weights {' → '.join(map(str, outcome.weights))}")
    if not outcome.as_expected:
        text.append(f"; expected {outcome.release.expect}", style="red")
    return text


def summary(
    outcomes: list[Outcome], route: RouteOutcome | None = None, plain: bool = False
) -> Table:
    """One row per release, and one for the new Service's route: what it was, what was
    expected, what happened.

    ``plain`` (no terminal): columns without box lines, as a log reads best.
    """
    table = Table(
        title="Summary",
        title_justify="left",
        box=box.SIMPLE_HEAD if plain else box.HEAVY_HEAD,
        show_edge=not plain,
    )
    for column in ("release", "image", "what", "expected", "result", "canary weights", "took"):
        table.add_column(column)
    for outcome in outcomes:
        table.add_row(
            outcome.release.label,
            outcome.release.tag,
            outcome.release.about,
            outcome.release.expect,
            Text(outcome.outcome, style="green" if outcome.as_expected else "bold red"),
            " → ".join(map(str, outcome.weights)),
            f"{outcome.seconds:.0f}s",
        )
    if route is not None:
        table.add_row(
            SERVICE,
            "",
            f"new Service, route {route.claim}",
            EXPECT,
            Text(route.state, style="green" if route.as_expected else "bold red"),
            "",
            f"{route.seconds:.0f}s",
        )
    return table


# =============================================================================
# The route of a new Service (cli.demo_route)
# =============================================================================


def route_header(namespace: str, claim: str) -> Text:
    """The line that opens the last act."""
    return Text.assemble(
        (f"\n{SERVICE}", "bold"),
        f": a new service is checked in: Deployment and Service {namespace}/{SERVICE}, the "
        f"Service annotated autopilot.dev/route: {claim}; expect: {EXPECT}",
    )


def waiting_for_route(ui: str, workflow: str) -> Text:
    """After the Service's command: what is now up to the watcher and the operator."""
    page = workflow_url(ui, workflow)
    return Text.assemble(
        ("  the Kubernetes watcher sees the annotated Service and starts ", "dim"),
        (workflow, "dim"),
        ("; following it (", "dim"),
        (page, f"dim link {page}"),
        ("):", "dim"),
    )


@dataclass
class RouteView:
    """The log of the new Service's route; a ``RouteObserver``.

    One timed line per state change (with what the machine noted), and each check by
    traffic that has not passed yet.

    Attributes:
        out: Where to print.
    """

    out: Console
    _reader: NewsReader = field(default_factory=NewsReader)

    def update(self, status: OperatorStatus, seconds: float) -> None:
        """Print what changed since the last look."""
        for line in self.lines(status):
            self.out.print(Text(f"  {seconds:5.1f}s  ") + line)

    def lines(self, status: OperatorStatus) -> list[Text]:
        """The lines for what ``status`` says that earlier looks did not."""
        news = self._reader.read(status)
        moves = [Text(f"{source} → {target}", style="bold") for source, target in news.moves]
        notes = [Text(note, style="dim") for note in news.notes]
        if moves and notes:  # the last note is the last move's; the others came before it
            moves[-1].append_text(Text("  ") + notes.pop())
        lines = [*notes, *moves]
        if news.check:
            lines.append(Text(f"check: {news.check}", style="dim"))
        return lines


def route_verdict(route: RouteOutcome) -> Text:
    """The line that closes the act: routed or not, and the states it passed."""
    mark, style = ("✓", "green") if route.as_expected else ("✗", "red")
    text = Text.assemble(
        (f"  {mark} {SERVICE} {route.state}", f"bold {style}"),
        f" in {route.seconds:.0f}s: {' → '.join(route.states)}",
    )
    if not route.as_expected:
        text.append(f"; expected {EXPECT}", style="red")
        if route.reason:
            text.append(f": {route.reason}", style="red")
    return text


def route_verification(route: RouteOutcome) -> Text:
    """How the route was verified: by simulated traffic through the gateway."""
    return Text.assemble(
        "  verified by traffic (simulated, through the gateway): ",
        (route.verification or "no check finished", "green" if route.as_expected else "red"),
    )
