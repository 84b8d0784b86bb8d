"""The Canaries the watchers know: by name, and by the Deployment each one targets.

The Kubernetes watcher writes it; the status mirror and the Prometheus watcher read it (the
latter to know which metrics each target wants). It is plain in-memory state, rebuilt from a
list on every start, and only ever touched from the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator

from watchers.kube.objects import CanaryObject, Key


class CanaryIndex:
    """Canaries by ``(namespace, name)`` and by target ``(namespace, deployment)``."""

    def __init__(self) -> None:
        self._canaries: dict[Key, CanaryObject] = {}
        self._by_target: dict[Key, set[Key]] = {}
        #: Set once the first complete list is in.
        self.synced = False

    def __len__(self) -> int:
        return len(self._canaries)

    def __iter__(self) -> Iterator[CanaryObject]:
        return iter(list(self._canaries.values()))

    def get(self, key: Key) -> CanaryObject | None:
        """The Canary named ``key``, if known."""
        return self._canaries.get(key)

    def put(self, canary: CanaryObject) -> None:
        """Add or replace a Canary."""
        self.remove(canary.key)
        self._canaries[canary.key] = canary
        self._by_target.setdefault(canary.target_key, set()).add(canary.key)

    def remove(self, key: Key) -> CanaryObject | None:
        """Forget a Canary; returns what was known of it."""
        old = self._canaries.pop(key, None)
        if old is not None:
            keys = self._by_target.get(old.target_key, set())
            keys.discard(key)
            if not keys:
                self._by_target.pop(old.target_key, None)
        return old

    def targeting(self, deployment: Key) -> set[Key]:
        """Keys of the Canaries that target ``deployment``."""
        return set(self._by_target.get(deployment, ()))

    def targets(self, namespace: str | None = None) -> list[Key]:
        """Every targeted Deployment, optionally in one namespace only."""
        return [key for key in self._by_target if namespace is None or key[0] == namespace]

    def keys(self, namespace: str | None = None) -> list[Key]:
        """Every Canary key, optionally in one namespace only."""
        return [key for key in self._canaries if namespace is None or key[0] == namespace]
