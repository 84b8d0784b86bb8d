"""``autopilot lint FILE...``: check operator manifests offline, before they are merged.

Why a command of its own: a team reviews a ``Canary`` in a pull request, long before anyone
runs ``autopilot canary start`` or ``kubectl apply``; CI can run this with no cluster and no
Temporal. Every document is checked with the loader the workflow itself uses
(:func:`models.canary.load_canary_spec` for a ``Canary``, the operator's spec model for the
other registered operators), so what passes here passes at the start of a rollout, and every
problem is one ``FILE:doc N: field.path: message`` line, the field named as the workflow
would name it.

A file may hold several documents (``---``); ``-`` reads standard input. Documents of other
API groups (the Deployment next to its Canary) are skipped; a kind in our group (or
Flagger's) that no operator registers is a problem, so a typo is not skipped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, BinaryIO

import typer
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_pascal

from cli.errors import Exit, friendly
from models.alerts import ALERT_PROVIDER_KIND, load_alert_provider
from models.canary import (
    CANARY_API_VERSION,
    CANARY_KIND,
    CanarySpecError,
    load_canary_spec,
)
from models.errors import field_errors
from models.flagger import ACCEPTED_API_VERSIONS, ResourceError
from models.limits import MAX_LINT_FILE_BYTES, format_size
from models.metric_templates import METRIC_TEMPLATE_KIND, load_metric_template

#: API groups whose kinds are Autopilot's to check (Flagger's, as ``canary start`` accepts it).
OUR_GROUPS = (CANARY_API_VERSION.split("/")[0], "flagger.app")
#: Standard input, as a file argument.
STDIN = "-"

#: Checks one document's mapping; returns its ``path: message`` problems (none: valid).
Check = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Finding:
    """One document of one file: what it is and what is wrong with it (nothing: valid)."""

    source: str
    document: int
    kind: str
    name: str
    problems: tuple[str, ...] = ()
    skipped: bool = False

    def lines(self) -> list[str]:
        """``FILE:doc N: field.path: message``, one per problem (``FILE: ...`` for the file)."""
        where = f"{self.source}:doc {self.document}" if self.document else self.source
        return [f"{where}: {problem}" for problem in self.problems]


def _check_canary(document: Mapping[str, Any]) -> list[str]:
    try:
        load_canary_spec(document)
    except CanarySpecError as error:
        return list(error.problems)
    return []


def _check_resource(load: Callable[[Mapping[str, Any]], BaseModel]) -> Check:
    """A check of a Canary's companion kind (MetricTemplate, AlertProvider), ours or Flagger's."""

    def check(document: Mapping[str, Any]) -> list[str]:
        try:
            load(document)
        except ResourceError as error:
            return list(error.problems)
        return []

    return check


#: The kinds a Canary names (``templateRef``, ``providerRef``), checked as the workers read them.
COMPANIONS: dict[str, Check] = {
    METRIC_TEMPLATE_KIND: _check_resource(load_metric_template),
    ALERT_PROVIDER_KIND: _check_resource(load_alert_provider),
}


def _check_with(model: type[BaseModel]) -> Check:
    """A check with an operator's spec model, as the engine validates it at workflow start."""

    def check(document: Mapping[str, Any]) -> list[str]:
        try:
            model.model_validate(document.get("spec") or {})
        except ValidationError as error:
            return field_errors(error, "spec")
        return []

    return check


@cache
def _operator_checks() -> dict[str, Check]:
    """Every registered operator's kind (its name in PascalCase) and check.

    Imported only when a document of our group is not a ``Canary``: the registry imports
    every workflow module, which ``lint`` of canaries does not need.
    """
    from cli.operators import registered

    found = registered()
    checks = {to_pascal(name): _check_with(op.spec) for name, op in found.items()}
    checks[CANARY_KIND] = _check_canary
    return checks


def _document_problems(document: object) -> tuple[str, str, list[str], bool]:
    """``(kind, name, problems, skipped)`` for one parsed document."""
    if not isinstance(document, Mapping):
        return "", "", ["(document): expected a mapping (a manifest or a canary spec)"], False
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = name if isinstance(name, str) else ""
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if kind is None and api_version is None:  # a bare spec, as `canary start -f` takes it
        return CANARY_KIND, name, _check_canary(document), False
    group = api_version.split("/")[0] if isinstance(api_version, str) else ""
    if group not in OUR_GROUPS:
        return str(kind), name, [], True
    if kind == CANARY_KIND:
        return CANARY_KIND, name, _check_canary(document), False
    if kind in COMPANIONS and api_version in ACCEPTED_API_VERSIONS:
        return str(kind), name, COMPANIONS[str(kind)](document), False
    checks = _operator_checks()
    if kind not in checks:
        known = ", ".join(sorted(checks))
        return str(kind), name, [f"kind: {kind} is not a kind Autopilot knows ({known})"], False
    if api_version != CANARY_API_VERSION:
        problem = f"apiVersion: expected {CANARY_API_VERSION} for {kind}, got {api_version}"
        return str(kind), name, [problem], False
    return str(kind), name, checks[str(kind)](document), False


def _documents(text: str) -> Iterator[object]:
    """Each YAML document of ``text``; empty ones (a trailing ``---``) left out."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.load_all(text, Loader=loader):
        if document is not None:
            yield document


def lint_text(text: str, source: str) -> list[Finding]:
    """Check every document of one file's text; a YAML error ends the file, named."""
    findings: list[Finding] = []
    try:
        for index, document in enumerate(_documents(text), start=1):
            kind, name, problems, skipped = _document_problems(document)
            findings.append(Finding(source, index, kind, name, tuple(problems), skipped))
    except yaml.YAMLError as error:
        problem = f"(document): not valid YAML: {error}".replace("\n", " ")
        findings.append(Finding(source, len(findings) + 1, "", "", (problem,)))
    except RecursionError:
        findings.append(
            Finding(source, len(findings) + 1, "", "", ("(document): nested too deeply",))
        )
    return findings


def _read(stream: BinaryIO, source: str) -> str:
    """The text of one file, refused unparsed when it passes :data:`MAX_LINT_FILE_BYTES`."""
    content = stream.read(MAX_LINT_FILE_BYTES + 1)
    if len(content) > MAX_LINT_FILE_BYTES:
        raise ValueError(f"more than {format_size(MAX_LINT_FILE_BYTES)}; lint smaller files")
    try:
        return content.decode()
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason})") from None


def lint_file(source: str) -> list[Finding]:
    """Read and check one file argument (``-``: standard input)."""
    try:
        if source == STDIN:
            text = _read(sys.stdin.buffer, source)
        else:
            with open(source, "rb") as stream:
                text = _read(stream, source)
    except OSError as error:
        return [Finding(source, 0, "", "", (f"(file): cannot read: {error.strerror or error}",))]
    except ValueError as error:
        return [Finding(source, 0, "", "", (f"(file): {error}",))]
    return lint_text(text, source)


@friendly
def lint_command(
    files: Annotated[
        list[str],
        typer.Argument(help="Manifest files (YAML or JSON, several documents each); - is stdin."),
    ],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the problems, no summary.")
    ] = False,
) -> None:
    """Check Canary (and other operator) manifests offline, as the workflow would load them."""
    findings = [finding for source in files for finding in lint_file(source)]
    invalid = [finding for finding in findings if finding.problems]
    for finding in invalid:
        for line in finding.lines():
            typer.echo(line)
    if not quiet:
        checked = sum(1 for f in findings if not f.skipped and f.document)
        skipped = sum(1 for f in findings if f.skipped)
        summary = f"{checked} document(s) checked, {len(invalid)} invalid"
        typer.echo(summary + (f", {skipped} of other kinds skipped" if skipped else ""), err=True)
    if invalid:
        raise typer.Exit(int(Exit.INVALID))
