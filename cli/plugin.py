"""``kubectl autopilot``: the ``autopilot`` CLI as a kubectl plugin, with kubectl's flags.

kubectl runs ``kubectl-autopilot`` (found on the PATH) with the arguments after the plugin's
name, unchanged: its own global flags come along wherever the user typed them, and kubectl
refuses flags before the plugin's name. So this entry point takes them out before the
``autopilot`` commands parse the rest:

* ``--kubeconfig FILE`` and ``--context NAME`` (anywhere before ``--``) become the settings
  every Kubernetes client reads (``AUTOPILOT_KUBECONFIG``, ``AUTOPILOT_KUBE_CONTEXT``), so
  they hold for this command and for the processes it starts (``worker``, ``demo``);
* ``-n`` / ``--namespace`` keep the meaning the command gives them (a target's namespace,
  ``list``'s filter); typed before the command's name they are moved after it;
* without ``-n``, a bare Deployment name is in the namespace of the kubeconfig's context,
  else ``default``, as ``kubectl get`` would look for it (:func:`default_namespace`).

Nothing heavy is imported here: the plugin starts as fast as ``autopilot``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

#: kubectl's flags taken out of the arguments, and the setting each becomes.
SETTING_OF = {"--kubeconfig": "AUTOPILOT_KUBECONFIG", "--context": "AUTOPILOT_KUBE_CONTEXT"}
NAMESPACE_FLAGS = ("-n", "--namespace")
#: Where a pod's ServiceAccount namespace is mounted.
POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

#: Whether a bare Deployment name defaults to the context's namespace (only as a plugin).
_context_namespace_default = False


@dataclass
class KubectlArgs:
    """The arguments for the ``autopilot`` commands, and the kubectl flags taken out."""

    args: list[str]
    settings: dict[str, str] = field(default_factory=dict)


class FlagWithoutValue(ValueError):
    """A kubectl flag at the end of the line, its value missing."""


def split(argv: list[str]) -> KubectlArgs:
    """Take kubectl's global flags out of ``argv`` (see the module docstring).

    Raises:
        FlagWithoutValue: ``--context``, ``--kubeconfig`` or ``-n`` ends the line.
    """
    args: list[str] = []
    settings: dict[str, str] = {}
    leading_namespace: list[str] = []
    command_seen = False
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            args.extend(argv[index:])
            break
        name, equals, value = arg.partition("=")
        if name in SETTING_OF or (not command_seen and name in NAMESPACE_FLAGS):
            if not equals:
                if index + 1 >= len(argv):
                    raise FlagWithoutValue(f"flag needs an argument: {arg}")
                value = argv[index + 1]
                index += 1
            if name in SETTING_OF:
                settings[SETTING_OF[name]] = value
            else:
                leading_namespace = ["--namespace", value]
            index += 1
            continue
        if not command_seen and arg.startswith("-n") and len(arg) > 2 and arg[2] != "-":
            leading_namespace = ["--namespace", arg[2:]]  # -nshop, as kubectl accepts it
            index += 1
            continue
        if not arg.startswith("-"):
            command_seen = True
        args.append(arg)
        index += 1
    if leading_namespace:
        end = args.index("--") if "--" in args else len(args)
        args[end:end] = leading_namespace
    return KubectlArgs(args=args, settings=settings)


def default_namespace() -> str | None:
    """The namespace a bare Deployment name is in when ``-n`` is not given, as a plugin.

    ``None`` for ``autopilot`` itself (a bare name there is an error that asks for ``-n``).
    As ``kubectl autopilot``: the namespace of the kubeconfig's context (``--context``, else
    its current-context; the files of ``KUBECONFIG`` are read in order, as kubectl merges
    them), else the pod's namespace in a pod, else ``default``.
    """
    if not _context_namespace_default:
        return None
    return _context_namespace() or _pod_namespace() or "default"


def _kubeconfig_files() -> list[Path]:
    from service.settings import KubernetesSettings

    configured = KubernetesSettings().kubeconfig
    if configured is not None:
        return [Path(part) for part in str(configured).split(os.pathsep) if part]
    return [Path.home() / ".kube" / "config"]


def _context_namespace() -> str | None:
    import yaml

    from service.settings import KubernetesSettings

    wanted = KubernetesSettings().context
    contexts: dict[str, object] = {}
    for path in _kubeconfig_files():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(loaded, dict):
            continue
        if wanted is None and isinstance(loaded.get("current-context"), str):
            wanted = loaded["current-context"]
        for entry in loaded.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                contexts.setdefault(entry["name"], entry.get("context"))
    found = contexts.get(wanted) if wanted else None
    namespace = found.get("namespace") if isinstance(found, dict) else None
    return namespace if isinstance(namespace, str) and namespace else None


def _pod_namespace() -> str | None:
    from service.settings import KubernetesSettings

    if not KubernetesSettings().in_cluster:
        return None
    try:
        return POD_NAMESPACE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def main() -> NoReturn:
    """The ``kubectl-autopilot`` console script: kubectl's flags applied, then ``autopilot``."""
    global _context_namespace_default
    from cli.errors import Exit, leave
    from cli.main import run

    try:
        split_args = split(sys.argv[1:])
    except FlagWithoutValue as error:
        print(f"error: {error}", file=sys.stderr)
        leave(Exit.INVALID)
    os.environ.update(split_args.settings)
    _context_namespace_default = True
    leave(run(split_args.args, prog_name="kubectl autopilot"))
