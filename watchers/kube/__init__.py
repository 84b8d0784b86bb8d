"""The Kubernetes watcher: ``Canary`` objects and their Deployments become canary events.

:class:`KubeWatcher` watches and signals; :class:`StatusMirror` writes each workflow's state
back into its Canary's status. Both share a :class:`CanaryIndex`. See ``docs/watchers.md``.
"""

from watchers.kube.canary_api import CanaryApi
from watchers.kube.client import KubeCalls, api_client
from watchers.kube.index import CanaryIndex
from watchers.kube.status import StatusMirror
from watchers.kube.watcher import KubeWatcher

__all__ = ["CanaryApi", "CanaryIndex", "KubeCalls", "KubeWatcher", "StatusMirror", "api_client"]
