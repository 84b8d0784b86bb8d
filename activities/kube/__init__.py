"""The one Kubernetes layer of every operator's activities.

Only this package imports ``kubernetes`` inside ``activities/`` (import-linter holds it to
that). An operator describes itself once as an :class:`Owner` and goes through it for
calls, reads, creates, deletes and the marks on its objects, and through
:func:`read_modify_write`, :func:`ensure` or :func:`retry_conflicts` for anything it
decides on what it read. The modules:

* :mod:`~activities.kube.client`: the process-wide API client;
* :mod:`~activities.kube.calls`: a blocking call in a thread, and reading API errors;
* :mod:`~activities.kube.owner`: managed-by marks, field manager, refusals;
* :mod:`~activities.kube.conflicts`: 409 handling with bounded backoff;
* :mod:`~activities.kube.events`: Kubernetes Events, deduplicated and rate-limited.

Server-side apply is not used: each write must see the live object first (to refuse one
that is not ours), and apply would merge where these writes replace (a DestinationRule's
spec) or create where they must not (the quarantine label on a Deployment that is gone).
"""

from activities.kube.calls import Json, is_conflict, is_not_found, to_dict
from activities.kube.client import api_client, apps, autoscaling, core, custom
from activities.kube.conflicts import ensure, read_modify_write, retry_conflicts
from activities.kube.events import ObjectRef, Recorder, recorder
from activities.kube.owner import MANAGED_BY, WORKFLOW, Owner

__all__ = [
    "MANAGED_BY",
    "WORKFLOW",
    "Json",
    "ObjectRef",
    "Owner",
    "Recorder",
    "api_client",
    "apps",
    "autoscaling",
    "core",
    "custom",
    "ensure",
    "is_conflict",
    "is_not_found",
    "read_modify_write",
    "recorder",
    "retry_conflicts",
    "to_dict",
]
