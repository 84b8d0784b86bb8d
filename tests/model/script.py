"""Scripted workers: every activity call waits until the test says what it returns.

The model test decides the order in which workers answer, so it must hold each call open:
one dynamic activity serves every activity name an operator runs, registers the call and
waits for :meth:`Script.answer` (a result event, or nothing) or :meth:`Script.fail` (a
non-retryable failure, which the engine sees at once as ``ActivityFailed``). A call that
waits long heartbeats, so a worker with a heartbeat timeout (``canary.start``) does not
time out while the test makes up its mind.

A worker the operator runs as a local activity (``ActivityRef(local=...)``) is not held:
it runs inside the workflow task that asked for it, so nothing else can happen to the run
meanwhile, and holding it would hold that task. :attr:`Script.answer_locally` answers it at
once (the world chooses the answer as it would for a held call).

Everything here runs on the worker's event loop; the model test reaches it through
:meth:`tests.model.machine.World.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from tests.waiting import eventually

#: How often a waiting call heartbeats (the SDK throttles what reaches the server).
HEARTBEAT_EVERY_S = 1.0


@dataclass(frozen=True)
class Failure:
    """The answer that makes a call fail without retries."""

    message: str


@dataclass(frozen=True)
class Dropped:
    """The answer of a call whose workflow is gone: it ends without telling the server."""


Answer = BaseModel | Failure | Dropped | None


@dataclass
class Call:
    """One activity call, held open until it is answered."""

    workflow_id: str
    run_id: str
    activity_id: str
    attempt: int
    name: str
    step: dict[str, Any]
    answer: asyncio.Future[Answer] = field(repr=False)
    #: A local activity's call: it runs inside a workflow task.
    local: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.workflow_id, self.run_id, self.activity_id)

    @property
    def state(self) -> str:
        """The machine state that runs this worker."""
        return str(self.step.get("state", "?"))


class Script:
    """The calls waiting for an answer, and the dynamic activity that makes them wait."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str], Call] = {}
        self.answered = 0
        #: Answers a local activity's call at once; unset, such a call is held like any.
        self.answer_locally: Callable[[Call], Answer] | None = None

    def activities(self) -> list[Callable[..., Any]]:
        """The worker's activities: one dynamic activity for every name."""
        script = self

        @activity.defn(dynamic=True)
        async def scripted(args: Sequence[RawValue]) -> Any:
            return await script._wait(args)

        return [scripted]

    async def _wait(self, args: Sequence[RawValue]) -> Any:
        info = activity.info()
        step = activity.payload_converter().from_payload(args[0].payload, dict) if args else {}
        call = Call(
            workflow_id=info.workflow_id or "",
            run_id=info.workflow_run_id or "",
            activity_id=info.activity_id,
            attempt=info.attempt,
            name=info.activity_type,
            step=step,
            answer=asyncio.get_running_loop().create_future(),
            local=info.is_local,
        )
        if call.local and self.answer_locally is not None:
            answer = self.answer_locally(call)
            self.answered += 1
        else:
            answer = await self._held(call)
        if isinstance(answer, Failure):
            raise ApplicationError(answer.message, type="NonRetryable", non_retryable=True)
        if isinstance(answer, Dropped) and not call.local:
            activity.raise_complete_async()  # nobody waits for it; say nothing to the server
        return None if isinstance(answer, Dropped) else answer

    async def _held(self, call: Call) -> Answer:
        """Wait for the test's answer to ``call``, heartbeating (unless it is local)."""
        self.calls[call.key] = call
        try:
            while True:
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(call.answer), timeout=HEARTBEAT_EVERY_S
                    )
                except TimeoutError:
                    if not call.local:
                        activity.heartbeat()
        finally:
            if self.calls.get(call.key) is call:
                del self.calls[call.key]

    # ------------------------------------------------------------- the test's side

    def waiting(self, workflow_id: str | None = None) -> list[Call]:
        """Calls not answered yet, oldest first (of one workflow, or of all)."""
        return sorted(
            (c for c in self.calls.values() if workflow_id in (None, c.workflow_id)),
            key=lambda c: (c.workflow_id, c.run_id, int(c.activity_id)),
        )

    def holds(self, workflow_id: str, run_id: str, activity_id: str, attempt: int) -> bool:
        """Whether that attempt of that activity is waiting here for an answer."""
        call = self.calls.get((workflow_id, run_id, activity_id))
        return call is not None and call.attempt == attempt

    def answer(self, call: Call, result: Answer) -> None:
        """Let ``call`` return ``result`` (or fail, for a :class:`Failure`)."""
        # Forget it now: until the server records the answer, the call is in flight, not
        # waiting, and the model test must not take the workflow for settled.
        self.calls.pop(call.key, None)
        if not call.answer.done():
            call.answer.set_result(result)
            self.answered += 1

    def fail(self, call: Call, message: str) -> None:
        """Let ``call`` fail for good with ``message``."""
        self.answer(call, Failure(message))

    def release(self, workflow_id: str) -> None:
        """End every call of a workflow the test has stopped, so no coroutine is left."""
        for call in self.waiting(workflow_id):
            self.answer(call, Dropped())

    async def next_call(self, workflow_id: str, name: str) -> Call:
        """Wait until ``workflow_id`` runs the activity ``name``; return that call."""

        def probe() -> Call | None:
            return next((c for c in self.waiting(workflow_id) if c.name == name), None)

        found: Call = await eventually(
            probe, lambda c: c is not None, attempts=400, pause=0.05, what=f"a call of {name}"
        )
        return found
