"""A stand-in rollout for the semaphore tests: a real workflow that records the events signalled
to it (as a canary would receive ``SlotGranted``) and runs until told to finish."""

from __future__ import annotations

from temporalio import workflow

from models.operator import EVENT_SIGNAL, EventEnvelope

GRANTS_QUERY = "grants"
FINISH_SIGNAL = "finish"


@workflow.defn(name="slot-holder-test")
class SlotHolderWorkflow:
    """Records every envelope it is signalled; ends on ``finish``."""

    def __init__(self) -> None:
        self._grants: list[str] = []
        self._finished = False

    @workflow.signal(name=EVENT_SIGNAL)
    def on_event(self, envelope: EventEnvelope) -> None:
        self._grants.append(envelope.id)

    @workflow.signal(name=FINISH_SIGNAL)
    def finish(self) -> None:
        self._finished = True

    @workflow.query(name=GRANTS_QUERY)
    def grants(self) -> list[str]:
        return list(self._grants)

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._finished)
        return list(self._grants)
