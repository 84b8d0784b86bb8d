"""The Temporal UI, in a real headless Chromium, shows what Autopilot publishes.

A human inspects rollouts in the Temporal UI: the workflow list filtered on our search
attributes, and one workflow's page with the current details the engine writes (state,
operator summary, accepted commands). These tests run the engine's test operator
("ticket") with an in-process worker on the local cluster's Temporal, open both pages and
assert on the rendered DOM. Screenshots and DOM dumps are kept under ``artifacts/browser/``.

Chromium comes from the Debian package (``scripts/test`` installs it). Without it the tests
skip, except in CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from devcluster import temporal as dev_temporal
from devcluster.cluster import DevCluster
from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, OperatorStatus, Target
from service.temporal import connect
from tests.browser.chromium import INSTALL_HINT, Chromium, find_chromium
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from worker_main import make_worker

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.temporal]

#: Where screenshots and DOM dumps go (gitignored; CI uploads it).
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

#: The iframe in which the UI renders a workflow's current details (markdown).
CURRENT_DETAILS_FRAME = "user-metadata-current-details"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; a clear failure in CI when it is missing, a skip elsewhere."""
    found = find_chromium()
    if found is None:
        message = f"chromium is not installed ({INSTALL_HINT}; scripts/test does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@dataclass(frozen=True)
class Ticket:
    """A running ticket workflow and where the UI shows it."""

    handle: WorkflowHandle[object, OperatorStatus]
    ui_url: str

    @property
    def workflow_id(self) -> str:
        """The workflow ID, e.g. ``ticket/ui-1a2b3c/change``."""
        return self.handle.id

    @property
    def namespace(self) -> str:
        """The target's namespace (unique to this test module)."""
        return self.workflow_id.split("/")[1]

    def list_url(self, query: str) -> str:
        """The UI's workflow list filtered by a visibility query."""
        return f"{self.ui_url}/namespaces/default/workflows?query={quote(query, safe='')}"

    @property
    def page_url(self) -> str:
        """The UI's page of this workflow (its latest run)."""
        return f"{self.ui_url}/namespaces/default/workflows/{quote(self.workflow_id, safe='')}"


@pytest.fixture(scope="module")
async def ticket_in_review(
    chromium: str, dev_cluster: DevCluster, temporal_address: str
) -> AsyncIterator[Ticket]:
    """A ticket with two votes, waiting in ``InReview``; its worker runs until the tests end.

    The worker must keep running: the UI asks it for the current details (a query). It
    depends on ``chromium`` first, so that a machine without a browser starts no cluster.
    """
    client: Client = await connect(temporal_address)
    task_queue = f"browser-tests-{uuid.uuid4().hex[:6]}"
    target = Target(namespace=f"ui-{uuid.uuid4().hex[:6]}", name="change")
    async with make_worker(client, task_queue, [TicketWorkflow], TICKET_ACTIVITIES):
        handle = await client.start_workflow(
            "ticket",
            OperatorInput(target=target, spec={"required_votes": 2}),
            id=target.workflow_id("ticket"),
            task_queue=task_queue,
            result_type=OperatorStatus,
        )
        for voter in ("alice", "bob"):
            vote = EventEnvelope(id=f"vote-{voter}", type="Vote", payload={"voter": voter})
            await handle.signal(EVENT_SIGNAL, vote)
        await _wait_until_in_review(client, handle.id)
        try:
            yield Ticket(handle, dev_temporal.ui_url(dev_cluster.ports["temporal_ui"]))
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("browser tests over")


async def _wait_until_in_review(client: Client, workflow_id: str) -> None:
    """Wait until visibility (what the UI lists) has the ``InReview`` search attribute."""
    query = f'WorkflowId = "{workflow_id}" AND AutopilotState = "InReview"'
    for _ in range(240):
        async for _found in client.list_workflows(query):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{workflow_id} never reached InReview in visibility")


async def test_the_workflow_list_filtered_on_our_search_attributes_shows_the_ticket(
    chromium: str, ticket_in_review: Ticket
) -> None:
    by_operator = ticket_in_review.list_url(
        f'AutopilotOperator="ticket" AND AutopilotNamespace="{ticket_in_review.namespace}"'
    )
    by_state = ticket_in_review.list_url(
        f'WorkflowId="{ticket_in_review.workflow_id}" AND AutopilotState="InReview"'
    )
    async with Chromium(chromium) as browser:
        await browser.open(by_operator)
        listed = await browser.wait_for_text(ticket_in_review.workflow_id)
        row = await browser.row_text(ticket_in_review.workflow_id)
        await browser.screenshot(ARTIFACTS / "workflow-list.png")
        (ARTIFACTS / "workflow-list.html").write_text(await browser.html())

        await browser.open(by_state)
        in_state = await browser.wait_for_text(ticket_in_review.workflow_id)

    assert 'AutopilotOperator = "ticket"' in listed  # the filter, as the UI shows it
    assert row is not None and "RUNNING" in row and "\tticket\t" in row  # status and type
    assert 'AutopilotState = "InReview"' in in_state  # found by its state


async def test_the_workflow_page_shows_the_id_state_and_current_details_summary(
    chromium: str, ticket_in_review: Ticket
) -> None:
    async with Chromium(chromium) as browser:
        await browser.open(ticket_in_review.page_url)
        header = await browser.wait_for_text(  # the input shows once the history has loaded
            ticket_in_review.workflow_id, "RUNNING", '"required_votes": 2'
        )
        await browser.screenshot(ARTIFACTS / "workflow-page.png")

        await browser.click("user-metadata-tab")
        details = await browser.wait_for_text(
            "state: InReview", "votes: 2", frame_id=CURRENT_DETAILS_FRAME
        )
        metadata = await browser.wait_for_text("Current Details")
        await browser.screenshot(ARTIFACTS / "workflow-current-details.png")
        (ARTIFACTS / "workflow-page.html").write_text(await browser.html())

    assert "Workflow Type" in header and "ticket" in header
    assert ticket_in_review.workflow_id in metadata
    assert f"ticket {ticket_in_review.namespace}/change" in details  # operator and target
    assert "commands: abort, approve, pause" in details  # what a human may do now
