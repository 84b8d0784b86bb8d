"""Helpers for engine tests: the shared ones (tests.operators.support), the ticket's worker."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.operators.support import STARTED, command, send, start, status, wait_for
from worker_main import make_worker

__all__ = ["STARTED", "command", "send", "start", "status", "ticket_worker", "wait_for"]


def ticket_worker(env: WorkflowEnvironment) -> Worker:
    """A worker for the ticket operator on ``env``, on a task queue of its own."""
    task_queue = f"engine-{uuid.uuid4().hex[:6]}"
    return make_worker(env.client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES)
