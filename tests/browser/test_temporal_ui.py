"""The Temporal UI, in a real headless Chromium driven by Playwright, shows what Autopilot
publishes.

A human inspects rollouts in the Temporal UI: the workflow list filtered on our search
attributes, with the rollouts' state and weight as columns, and one workflow's page with the
current details the engine writes (state, operator summary, accepted commands). These tests
run the engine's test operator ("ticket") and real canary rollouts (promoted, rolled back,
held at a gate) with in-process workers on the local cluster's Temporal, open the pages as a
person would (filters, "Configure Columns", "Save as New") and read the rendered page.

Screenshots land in ``artifacts/browser/``; with ``AUTOPILOT_UPDATE_DOC_IMAGES=1`` the ones
the docs show are also written to ``docs/images/``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from kubernetes import client as kube
from playwright.async_api import FloatRect, Locator, Page, expect
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from devcluster import temporal as dev_temporal
from devcluster.cluster import DevCluster
from models.operator import EVENT_SIGNAL, EventEnvelope, OperatorInput, OperatorStatus, Target
from service.temporal import connect
from tests.browser.chromium import VIEWPORT
from tests.canary.cluster import ERROR_RATE, app_deployment, create_app, new_revision
from tests.canary.e2e import Rollouts
from tests.canary.specs import spec_dict
from tests.engine.ticket_operator import TICKET_ACTIVITIES, TicketWorkflow
from tests.fixtures.cluster import fresh_namespace
from tests.waiting import eventually
from worker_main import make_worker

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.temporal]

ROOT = Path(__file__).resolve().parents[2]

#: Where screenshots and DOM dumps go (gitignored; CI uploads it).
ARTIFACTS = ROOT / "artifacts" / "browser"

#: Where the docs' screenshots live, refreshed only when asked.
DOC_IMAGES = ROOT / "docs" / "images"
UPDATE_DOC_IMAGES_ENV = "AUTOPILOT_UPDATE_DOC_IMAGES"

#: CSS pixels of the UI's navigation bar on the left (left out of the docs' images).
NAVIGATION_WIDTH = 256

#: The iframe in which the UI renders a workflow's current details (markdown).
CURRENT_DETAILS_FRAME = "#user-metadata-current-details"

#: Milliseconds a page may take to show what a test waits for (a functional wait). Text is
#: compared as shown (innerText: the UI upper-cases statuses with CSS).
SHOWS_WITHIN_MS = 60_000

#: The saved view docs/operations.md describes: its name, and the columns added to the list.
VIEW_NAME = "Canary rollouts"
VIEW_COLUMNS = ("AutopilotState", "CanaryWeight")

V1 = "ghcr.io/stefanprodan/podinfo:6.5.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.5.1"
#: A 6 s window at 10 % of the simulator's 10 requests a second holds about 6 requests.
SUCCESS_RATE = {
    "name": "request-success-rate",
    "thresholdRange": {"min": 99},
    "interval": "6s",
    "minSampleCount": 3,
}


def list_url(ui_url: str, query: str) -> str:
    """The UI's workflow list filtered by a visibility query."""
    return f"{ui_url}/namespaces/default/workflows?query={quote(query, safe='')}"


def page_url(ui_url: str, workflow_id: str) -> str:
    """The UI's page of a workflow (its latest run)."""
    return f"{ui_url}/namespaces/default/workflows/{quote(workflow_id, safe='')}"


async def screenshot(page: Page, name: str, *, for_docs: bool = False, height: int = 900) -> None:
    """Keep a PNG of the page in the artifacts; when asked, also the top ``height`` pixels
    right of the navigation bar in docs/images/ (smaller, and only what the docs discuss)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png")
    if for_docs and os.environ.get(UPDATE_DOC_IMAGES_ENV) == "1":
        width = VIEWPORT["width"] - NAVIGATION_WIDTH
        clip = FloatRect(x=NAVIGATION_WIDTH, y=0, width=width, height=height)
        await page.screenshot(path=DOC_IMAGES / f"{name}.png", clip=clip)


async def shows(locator: Locator, text: str) -> None:
    """Wait until ``locator`` shows ``text`` as a person sees it (innerText)."""
    await expect(locator).to_contain_text(text, timeout=SHOWS_WITHIN_MS, use_inner_text=True)


async def listed(client: Client, query: str) -> None:
    """Wait until visibility (what the UI lists) has a workflow matching ``query``."""

    async def count() -> int:
        return (await client.count_workflows(query)).count

    await eventually(count, attempts=240, what=f"a workflow matching {query}")


async def table_rows(page: Page) -> list[dict[str, str]]:
    """The workflow table as the page shows it: one dict per row, by column header."""
    rows: list[dict[str, str]] = await page.locator("table").first.evaluate(
        """table => {
            const heads = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
            return [...table.querySelectorAll('tbody tr')].map(tr => Object.fromEntries(
                [...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.innerText.trim()])));
        }"""
    )
    return rows


# --- the ticket: the list filtered on our search attributes, and the workflow page ---------


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
        await listed(client, f'WorkflowId = "{handle.id}" AND AutopilotState = "InReview"')
        try:
            yield Ticket(handle, dev_temporal.ui_url(dev_cluster.ports["temporal_ui"]))
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("browser tests over")


async def test_the_workflow_list_filtered_on_our_search_attributes_shows_the_ticket(
    page: Page, ticket_in_review: Ticket
) -> None:
    ticket = ticket_in_review
    await page.goto(
        list_url(
            ticket.ui_url,
            f'AutopilotOperator="ticket" AND AutopilotNamespace="{ticket.namespace}"',
        )
    )
    row = page.get_by_role("row").filter(has_text=ticket.workflow_id)
    await expect(row).to_be_visible(timeout=SHOWS_WITHIN_MS)
    await screenshot(page, "workflow-list")
    cells = (await table_rows(page))[0]
    filters = await page.locator("body").inner_text()

    await page.goto(
        list_url(ticket.ui_url, f'WorkflowId="{ticket.workflow_id}" AND AutopilotState="InReview"')
    )
    await expect(page.get_by_role("row").filter(has_text=ticket.workflow_id)).to_be_visible(
        timeout=SHOWS_WITHIN_MS
    )
    in_state = await page.locator("body").inner_text()

    assert 'AutopilotOperator = "ticket"' in filters  # the filter, as the UI shows it
    assert cells["Status"] == "RUNNING" and cells["Type"] == "ticket"
    assert cells["Workflow ID"] == ticket.workflow_id
    assert 'AutopilotState = "InReview"' in in_state  # found by its state


async def test_the_workflow_page_shows_the_id_state_and_current_details_summary(
    page: Page, ticket_in_review: Ticket
) -> None:
    ticket = ticket_in_review
    await page.goto(page_url(ticket.ui_url, ticket.workflow_id))
    body = page.locator("body")
    for shown in (ticket.workflow_id, "RUNNING", '"required_votes": 2'):  # once history loaded
        await shows(body, shown)
    header = await body.inner_text()
    await screenshot(page, "workflow-page")

    await page.locator("#user-metadata-tab").click()
    details = page.frame_locator(CURRENT_DETAILS_FRAME).locator("body")
    await shows(details, "state: InReview")
    await shows(body, "Current Details")
    await screenshot(page, "workflow-current-details")

    assert "Workflow Type" in header and "ticket" in header
    assert ticket.workflow_id in await body.inner_text()
    summary = await details.inner_text()
    assert "votes: 2" in summary
    assert f"ticket {ticket.namespace}/change" in summary  # operator and target
    assert "commands: abort, approve, pause" in summary  # what a human may do now


# --- canary rollouts: the saved view with their state and weight ----------------------------


@dataclass(frozen=True)
class Rollout:
    """A canary rollout that reached the state the test wanted, and what the workflow said."""

    handle: WorkflowHandle[Any, OperatorStatus]
    status: OperatorStatus

    @property
    def run_id(self) -> str:
        """The run of the rollout itself (the bootstrap run before it has the same ID)."""
        assert self.handle.result_run_id is not None
        return self.handle.result_run_id


@dataclass(frozen=True)
class CanaryRollouts:
    """Three rollouts on the cluster and where the UI lists them."""

    promoted: Rollout
    rolled_back: Rollout
    held: Rollout
    namespaces: tuple[str, ...]
    ui_url: str

    @property
    def query(self) -> str:
        """The rollouts of this module: the operator, then their namespaces."""
        names = ", ".join(f'"{name}"' for name in self.namespaces)
        return f'AutopilotOperator="canary" AND AutopilotNamespace IN ({names})'


async def roll_out(
    rollouts: Rollouts,
    kube_api: kube.ApiClient,
    namespace: str,
    spec: dict[str, Any],
    *,
    annotations: dict[str, str] | None = None,
    until: str | None = None,
) -> Rollout:
    """Deploy podinfo at V1 (a first run initializes it), then roll out V2 until ``until``
    (the end of the workflow when None)."""
    create_app(kube_api, namespace, app_deployment("podinfo", V1))
    await (await rollouts.start(namespace, "podinfo", spec)).result()
    new_revision(kube_api, namespace, "podinfo", V2, annotations)
    handle = await rollouts.start(namespace, "podinfo", spec)
    waited: Awaitable[OperatorStatus] = (
        rollouts.wait_for(handle, until) if until else handle.result()
    )
    return Rollout(handle, await waited)


@pytest.fixture(scope="module")
async def canary_rollouts(
    chromium: str, rollouts: Rollouts, kube_api: kube.ApiClient, dev_cluster: DevCluster
) -> AsyncIterator[CanaryRollouts]:
    """A healthy rollout promoted, one with half its requests failing rolled back, and one
    held at its promotion gate (the live weight 50), run side by side."""
    analysis: dict[str, Any] = {"interval": "2s", "stepWeight": 25, "metrics": [SUCCESS_RATE]}
    spec = spec_dict("podinfo", **analysis)
    gated = spec_dict("podinfo", **analysis, gates={"beforePromotion": True})
    with (
        fresh_namespace(kube_api) as promoted_in,
        fresh_namespace(kube_api) as rolled_back_in,
        fresh_namespace(kube_api) as held_in,
    ):
        promoted, rolled_back, held = await asyncio.gather(
            roll_out(rollouts, kube_api, promoted_in, spec),
            roll_out(
                rollouts,
                kube_api,
                rolled_back_in,
                spec,
                annotations={ERROR_RATE: "0.5"},
                until="Failed",
            ),
            roll_out(rollouts, kube_api, held_in, gated, until="AwaitingPromotion"),
        )
        started = (promoted, rolled_back, held)
        try:
            for rollout in started:
                await listed(
                    rollouts.client,
                    f'RunId = "{rollout.run_id}" AND AutopilotState = "{rollout.status.state}"',
                )
            yield CanaryRollouts(
                promoted,
                rolled_back,
                held,
                (promoted_in, rolled_back_in, held_in),
                dev_temporal.ui_url(dev_cluster.ports["temporal_ui"]),
            )
        finally:
            for rollout in started:
                if (await rollout.handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await rollout.handle.terminate("browser tests over")


async def save_the_canary_view(page: Page, canaries: CanaryRollouts) -> None:
    """What docs/operations.md tells a person to do once: filter, add the two columns, save."""
    await page.goto(list_url(canaries.ui_url, canaries.query))
    await expect(page.get_by_role("row").filter(has_text=canaries.promoted.run_id)).to_be_visible(
        timeout=SHOWS_WITHIN_MS
    )
    await page.get_by_role("button", name="Configure Columns").click()
    for column in ("Type", "Start"):  # room for the new ones on a laptop screen
        await page.get_by_role("button", name=f"Remove {column} column").click()
    for column in VIEW_COLUMNS:  # added last, moved up next to the Workflow ID
        await page.get_by_role("button", name=f"Add {column} column").click()
        for _ in range(2):  # above Run ID and End
            await page.get_by_role("button", name=f"Move {column} column up").click()
    await page.get_by_test_id("drawer-close-button").click()
    await page.get_by_test_id("create-view-button").click()
    await page.get_by_test_id("workflow-save-view-modal-input").fill(VIEW_NAME)
    await page.get_by_test_id("workflow-save-view-modal-input").press("Enter")


async def test_the_saved_canary_view_lists_each_rollout_with_its_state_and_weight(
    page: Page, canary_rollouts: CanaryRollouts
) -> None:
    canaries = canary_rollouts
    await save_the_canary_view(page, canaries)

    await page.goto(f"{canaries.ui_url}/namespaces/default/workflows")  # all workflows
    await page.get_by_test_id("saved-views-button").click()
    await page.get_by_text(VIEW_NAME, exact=True).click()
    for column in VIEW_COLUMNS:
        await expect(page.get_by_role("columnheader", name=column)).to_be_visible()
    for rollout in (canaries.promoted, canaries.rolled_back, canaries.held):
        await expect(page.get_by_role("row").filter(has_text=rollout.run_id)).to_be_visible(
            timeout=SHOWS_WITHIN_MS
        )
    await screenshot(page, "canary-rollouts-list", for_docs=True, height=500)
    shown = {row["Run ID"]: row for row in await table_rows(page)}

    def state_and_weight(rollout: Rollout) -> tuple[str, str, str]:
        row = shown[rollout.run_id]
        return row["Status"], row["AutopilotState"], row["CanaryWeight"]

    assert state_and_weight(canaries.promoted) == ("COMPLETED", "Succeeded", "0")
    assert state_and_weight(canaries.rolled_back) == ("RUNNING", "Failed", "0")
    assert state_and_weight(canaries.held) == ("RUNNING", "AwaitingPromotion", "50")
    assert canaries.rolled_back.status.data["outcome"] == "rolled back"
    assert canaries.held.status.data["canary_weight"] == 50  # the workflow agrees


async def test_the_rolled_back_rollouts_page_shows_why_in_its_current_details(
    page: Page, canary_rollouts: CanaryRollouts
) -> None:
    failed = canary_rollouts.rolled_back
    await page.goto(page_url(canary_rollouts.ui_url, failed.handle.id))
    await shows(page.locator("body"), failed.run_id)

    await page.locator("#user-metadata-tab").click()
    details = page.frame_locator(CURRENT_DETAILS_FRAME).locator("body")
    await shows(details, "state: Failed")
    await screenshot(page, "canary-rollout-page", for_docs=True)
    summary = await details.inner_text()

    assert "request-success-rate" in summary  # the metric that failed
    assert "retry" in summary  # the command a human may give now
