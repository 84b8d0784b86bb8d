"""What an operator writes on the objects it manages, and how its calls fail.

Every object an operator creates or takes over carries the label
``app.kubernetes.io/managed-by: autopilot`` and the annotations ``autopilot.dev/managed-by:
<operator>`` and ``autopilot.dev/workflow: <workflow id>``, and every write records the field
manager ``autopilot-<operator>``. An object of the right name without that annotation belongs
to someone else: :meth:`Owner.refuse_foreign` stops the activity, without retries, instead of
replacing it. ``docs/operators/*.md`` list these names for GitOps tools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from activities.errors import non_retryable
from activities.kube.calls import (
    Json,
    describe,
    exactly,
    is_conflict,
    is_not_found,
    reason,
    to_dict,
    to_thread,
)

#: Annotation on every object an operator created or took over; its value names the operator.
MANAGED_BY = "autopilot.dev/managed-by"
#: Annotation naming the workflow that drives (or wrote) the object.
WORKFLOW = "autopilot.dev/workflow"
#: The standard label for objects a tool manages, and our value of it.
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_LABEL_VALUE = "autopilot"
#: HTTP statuses from the API server that no retry will fix (a bad request, no permission).
REFUSALS = frozenset({400, 401, 403, 422})


@dataclass(frozen=True)
class Owner:
    """One operator as the cluster sees it: its marks on objects and its field manager.

    Attributes:
        operator: the value of :data:`MANAGED_BY` (``canary``, ``quarantine``...).
        labels: more labels on every object it creates.
        annotations: more annotations on every object it creates.
        refusals_are_final: turn a :data:`REFUSALS` answer into a non-retryable error. Off
            where an activity must keep trying whatever happens (the canary's rollback).
    """

    operator: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    refusals_are_final: bool = False

    @property
    def field_manager(self) -> str:
        """Recorded for every write (visible in ``managedFields``)."""
        return f"autopilot-{self.operator}"

    def metadata(
        self,
        name: str,
        namespace: str,
        workflow_id: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Json:
        """Metadata for an object this operator creates, marked as its own."""
        return {
            "name": name,
            "namespace": namespace,
            "labels": {**(labels or {}), **self.labels, MANAGED_LABEL: MANAGED_LABEL_VALUE},
            "annotations": {
                MANAGED_BY: self.operator,
                WORKFLOW: workflow_id,
                **self.annotations,
                **(annotations or {}),
            },
        }

    def owns(self, obj: Json) -> bool:
        """Whether this operator created (or was allowed to take over) ``obj``."""
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return bool(annotations.get(MANAGED_BY) == self.operator)

    def refuse_foreign(self, obj: Json, remedy: str | None = None) -> None:
        """Stop, without retries, unless this operator owns ``obj``.

        Args:
            obj: the live object.
            remedy: what the user can do; by default, how to hand the object over.
        """
        if self.owns(obj):
            return
        hint = remedy or "delete it, or add that annotation to hand it over"
        raise non_retryable(
            f"{describe(obj)} exists and is not managed by autopilot "
            f"(no {MANAGED_BY}={self.operator} annotation); {hint}"
        )

    def correction(
        self, wanted: Json, differs: Callable[[Json, Json], bool]
    ) -> Callable[[Json], bool]:
        """The ``correct`` of :func:`ensure` for an object this operator writes whole.

        It refuses an object another owner holds, leaves one ``differs`` finds as wanted,
        and otherwise gives it the wanted spec and adds our labels and annotations to its
        own (a user's labels stay). Whether it changed anything.
        """

        def correct(live: Json) -> bool:
            self.refuse_foreign(live, "refusing to replace it")
            if not differs(live, wanted):
                return False
            meta = live["metadata"]
            meta["labels"] = {**(meta.get("labels") or {}), **wanted["metadata"]["labels"]}
            meta["annotations"] = {
                **(meta.get("annotations") or {}),
                **wanted["metadata"]["annotations"],
            }
            live["spec"] = wanted["spec"]
            return True

        return correct

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One client call, in a thread; a refusal stops retries if :attr:`refusals_are_final`."""
        try:
            return await to_thread(fn, *args, **kwargs)
        except ApiException as error:
            if self.refusals_are_final and error.status in REFUSALS:
                raise non_retryable(
                    f"the API server refused: {error.status} {reason(error)}"
                ) from error
            raise

    async def read_or_none(self, fn: Callable[..., Any], *args: Any) -> Json | None:
        """Read an object, or ``None`` when it does not exist."""
        try:
            return to_dict(await self.call(fn, *args))
        except ApiException as error:
            if is_not_found(error):
                return None
            raise

    async def create_or_none(self, fn: Callable[..., Any], *args: Any) -> Json | None:
        """Create an object (``args`` end with its body); ``None`` when it already exists."""
        try:
            return to_dict(await self.call(fn, *args, field_manager=self.field_manager))
        except ApiException as error:
            if is_conflict(error):
                return None
            raise

    async def delete_exactly(self, obj: Json, fn: Callable[..., Any], *args: Any) -> bool:
        """Delete ``obj`` as it was read (see :func:`~activities.kube.calls.exactly`).

        Returns:
            False when it was gone already. A 409 (it changed meanwhile) is raised, so
            :func:`~activities.kube.conflicts.retry_conflicts` looks again.
        """
        try:
            await self.call(fn, *args, body=exactly(obj))
        except ApiException as error:
            if is_not_found(error):
                return False
            raise
        return True
