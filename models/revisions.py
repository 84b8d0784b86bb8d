"""A Deployment's revision: a short, stable hash of its pod template.

Why its own module: the Kubernetes watcher, the canary's workers and the CLI must compute
the very same revision for the same template (it is how the workflow tells a new template
from a replayed event), so there is one function, shared by all three.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: Pod-template annotations that do not make a new revision (``kubectl rollout restart``).
IGNORED_TEMPLATE_ANNOTATIONS = ("kubectl.kubernetes.io/restartedAt",)


def pod_template_revision(template: Mapping[str, Any]) -> str:
    """The revision of a Deployment's pod template: a short, stable hash.

    Watchers send it in :class:`models.canary.NewRevision` so the workflow can tell a new
    template from a replayed event for the one it is already rolling out; the workers
    compute the same.
    """
    canonical = copy.deepcopy(dict(template))
    annotations = (canonical.get("metadata") or {}).get("annotations") or {}
    for key in IGNORED_TEMPLATE_ANNOTATIONS:
        annotations.pop(key, None)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
