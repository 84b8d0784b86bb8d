"""``autopilot new operator NAME``: write a working operator to start from.

Six files, in the project's layout, each in the package whose rules it follows:

* ``models/<name>.py``: spec, data and events (pydantic only);
* ``workflows/<name>.py``: the machine and its ``@register @workflow.defn`` class (the
  registry imports every module of ``workflows``, so nothing else needs editing);
* ``activities/<name>.py``: the workers, ``@activity.defn(name="<name>.<fn>")``, and the
  module's ``ACTIVITIES`` list the worker collects;
* ``tests/operators/<name>/test_<name>.py``: tests on the time-skipping server that pass
  as generated, built on the shared helpers of ``tests/operators/support.py``;
* ``docs/operators/<name>.md``: what it does, what feeds it, its commands and its diagram
  (the one ``autopilot describe <name> --mermaid`` prints; a test keeps them equal).

The templates sit next to this module (``*.py.tmpl``, ``string.Template`` syntax).
Nothing is overwritten: an existing name, an invalid identifier or a directory that is not
an Autopilot project is refused before any file is written.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

#: An operator name: a lowercase Python identifier (it names modules and workflow IDs),
#: short enough for every generated line to stay within the project's line length.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,29}$")

#: The project's line length (``ruff``), which generated imports respect.
LINE_LENGTH = 100

#: Names the generated modules already use at module level, or that name packages.
RESERVED = frozenset(
    {
        "activities",
        "activity",
        "annotations",
        "any",
        "apply_change",
        "approval_time",
        "asyncio",
        "c",
        "command",
        "deployment_changed",
        "details",
        "engine",
        "event",
        "models",
        "machine",
        "needs_approval",
        "operator",
        "prepare",
        "pytest",
        "record_applied",
        "record_failure",
        "record_prepared",
        "registry",
        "send",
        "start",
        "start_over",
        "status",
        "step",
        "support",
        "target",
        "tests",
        "timedelta",
        "uuid",
        "wait_for",
        "worker",
        "workflow",
        "workflows",
    }
)

#: Template file, and where its output goes (``{name}`` is the operator's name).
FILES = (
    ("model.py.tmpl", "models/{name}.py"),
    ("workflow.py.tmpl", "workflows/{name}.py"),
    ("activities.py.tmpl", "activities/{name}.py"),
    ("test_package.py.tmpl", "tests/operators/{name}/__init__.py"),
    ("test.py.tmpl", "tests/operators/{name}/test_{name}.py"),
    ("doc.md.tmpl", "docs/operators/{name}.md"),
)

#: Packages a project must have for the generated files to work.
PACKAGES = ("models", "workflows", "activities", "tests", "tests/operators")


class ScaffoldError(ValueError):
    """The operator cannot be generated; the message says why."""


@dataclass(frozen=True)
class Scaffold:
    """What was generated."""

    name: str
    class_prefix: str
    files: tuple[Path, ...]


def class_prefix(name: str) -> str:
    """``door_lock`` → ``DoorLock``."""
    return "".join(part.capitalize() for part in name.split("_") if part)


def check_name(name: str) -> None:
    """Refuse a name that cannot be an operator's.

    Raises:
        ScaffoldError: Not a lowercase identifier, a Python keyword, or a reserved name.
    """
    if not NAME_PATTERN.match(name) or name.endswith("_") or "__" in name:
        raise ScaffoldError(
            f"{name!r} is not a valid operator name: use lowercase letters, digits and single "
            "underscores, starting with a letter (e.g. quarantine, door_lock)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved (a keyword or a name the generated code uses)")


def planned_files(root: Path, name: str) -> list[Path]:
    """The files :func:`scaffold` would write under ``root``."""
    return [root / target.format(name=name) for _template, target in FILES]


def check_project(root: Path, name: str) -> None:
    """Refuse a directory that is not a project, or a name that exists there already.

    Raises:
        ScaffoldError: A package is missing, or a module or package of that name exists.
    """
    missing = [p for p in PACKAGES if not (root / p / "__init__.py").is_file()]
    if missing:
        raise ScaffoldError(
            f"{root} does not look like an Autopilot project (no {', '.join(missing)} "
            "package); run this at the project's root or give --dir"
        )
    taken = [path for path in planned_files(root, name) if path.exists()]
    taken += [
        root / p / name for p in ("models", "workflows", "activities") if (root / p / name).exists()
    ]
    if taken:
        listed = ", ".join(str(p.relative_to(root)) for p in taken)
        raise ScaffoldError(f"an operator named {name!r} exists already ({listed})")


def import_lines(imports: dict[str, list[str]]) -> str:
    """``from module import a, b`` lines, sorted and wrapped the way the project's linter
    wants (where the operator's own module falls depends on its name)."""
    modules = sorted(imports, key=lambda m: (m.lower(), m))
    return "\n".join(import_line(module, imports[module]) for module in modules)


def import_line(module: str, names: list[str]) -> str:
    """``from module import a, b`` sorted and wrapped the way the project's linter wants."""
    # The linter's order: CONSTANTS, then Classes, then functions and variables.
    ordered = sorted(names, key=lambda n: (_kind(n), n.lower(), n))
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= LINE_LENGTH:
        return line
    members = "".join(f"    {n},\n" for n in ordered)
    return f"from {module} import (\n{members})"


def _kind(name: str) -> int:
    if name.isupper():
        return 0
    return 1 if name[:1].isupper() else 2


def render(template: str, name: str) -> str:
    """One template with the operator's name filled in."""
    text = resources.files(__name__).joinpath(template).read_text(encoding="utf-8")
    prefix = class_prefix(name)
    models = f"models.{name}"
    data, spec = f"{prefix}Data", f"{prefix}Spec"
    return Template(text).substitute(
        name=name,
        Name=prefix,
        workflow_model_imports=import_lines(
            {
                models: ["OPERATOR", "Applied", "Changed", "Prepared", data, spec],
                "models.operator": ["OperatorInput", "OperatorStatus", "Target"],
                "models.senses": ["Emit", "KubeChange", "WatchKind", "Webhook"],
            }
        ),
        test_model_imports=import_lines(
            {
                models: ["Changed"],
                "models.operator": ["OperatorStatus"],
                "models.senses": ["KubeChange", "WatchKind"],
            }
        ),
        activity_model_imports=import_lines(
            {
                models: ["OPERATOR", "Applied", "Prepared", data, spec],
                "models.operator": ["StepInput"],
            }
        ),
    )


def scaffold(root: Path, name: str) -> Scaffold:
    """Write a new operator ``name`` into the project at ``root``.

    Raises:
        ScaffoldError: Invalid name, not a project, or the name exists; nothing is written.
    """
    check_name(name)
    check_project(root, name)
    rendered = [(root / target.format(name=name), render(t, name)) for t, target in FILES]
    for path, text in rendered:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Scaffold(name=name, class_prefix=class_prefix(name), files=tuple(p for p, _ in rendered))
