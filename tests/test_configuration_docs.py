"""One settings tree: the docs list exactly its variables, and nothing else reads them."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic_settings import BaseSettings

from service import settings_doc
from service.settings import AutopilotSettings

ROOT = Path(__file__).resolve().parents[1]
#: Packages whose configuration must come from the settings tree.
CONFIGURED = ("activities", "cli", "models", "service", "watchers", "workflows")
#: Environment reads that are not configuration, and why.
NOT_CONFIGURATION = {
    "service/settings.py": "the tree itself",
    "cli/errors.py": "AUTOPILOT_DEBUG shows tracebacks; a developer's switch",
    "cli/dev.py": "AUTOPILOT_DEBUG, likewise",
    "cli/demo.py": "passes the environment on to the processes it starts",
    "cli/demo_rollout.py": "passes the environment on to kubectl, with the cluster's KUBECONFIG",
    "cli/plugin.py": "writes kubectl's --kubeconfig and --context as the settings they are",
}


def test_the_settings_reference_in_the_docs_is_the_one_generated_from_the_model():
    current = settings_doc.DOC.read_text()
    assert settings_doc.rendered(current) == current, "run python -m service.settings_doc"


def test_every_variable_of_the_tree_is_in_the_docs():
    text = settings_doc.DOC.read_text()
    for section in AutopilotSettings.model_fields.values():
        model = section.annotation
        assert isinstance(model, type) and issubclass(model, BaseSettings)
        for name, field in model.model_fields.items():
            for env in settings_doc.env_names(model, name, field):
                assert f"`{env}`" in text, env


def _reads_environment(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            return True
    return False


def test_nothing_outside_the_settings_tree_reads_the_environment_for_configuration():
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in CONFIGURED
        for path in (ROOT / package).rglob("*.py")
        if _reads_environment(path)
    )
    assert readers == sorted(NOT_CONFIGURATION), readers
