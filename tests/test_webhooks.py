"""The webhook server on a real loopback port, delivering to a real Temporal dev server.

The workflows are test recorders registered under operator names (``quarantine``,
``autoroute``, ``canary``; see ``tests/recording_workflows.py``). Alertmanager and GitHub
are simulated: the payloads below are hand-written samples in their documented shapes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.operator import workflow_id
from service.settings import WebhookSettings
from service.temporal import connect
from tests.recording_workflows import exists, recorded, recording_worker, unique_name
from watchers.delivery import Delivery, DeliveryMetrics, RetryPolicy
from watchers.webhooks import WebhookServer, serve_webhooks, sign

pytestmark = pytest.mark.temporal

EVENTS_SECRET = "test-events-secret-0123456789"
ALERTMANAGER_TOKEN = "test-alertmanager-token-0123456789"
GITHUB_SECRET = "test-github-secret-0123456789"
TASK_QUEUE = f"webhook-tests-{uuid.uuid4().hex[:8]}"
#: Fuzzed requests go to a task queue no worker polls: nothing there may ever start.
FUZZ_QUEUE = f"webhook-fuzz-{uuid.uuid4().hex[:8]}"
MIB = 1024 * 1024


def webhook_settings(**overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "events_secret": EVENTS_SECRET,
        "alertmanager_token": ALERTMANAGER_TOKEN,
        "github_secret": GITHUB_SECRET,
        "github_operator": "autoroute",
        # Generous: the machine is shared; the timeout path has its own test below.
        "response_timeout_s": 60,
    }
    values.update(overrides)
    return WebhookSettings(**values)


@dataclass
class Webhooks:
    """A running webhook server, an HTTP client for it, and its metrics registry."""

    http: aiohttp.ClientSession
    registry: CollectorRegistry
    server: WebhookServer

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with self.http.post(path, data=body, headers=dict(headers)) as response:
            text = await response.text()
            try:
                answer = json.loads(text)
            except json.JSONDecodeError:
                answer = {"text": text}
            return response.status, answer

    async def event(self, body: dict[str, Any], secret: str = EVENTS_SECRET) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        return await self.post("/v1/events", raw, signed(raw, secret))

    async def alerts(self, body: dict[str, Any], token: str = ALERTMANAGER_TOKEN) -> Any:
        raw = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return await self.post("/v1/alertmanager", raw, headers)

    async def github(
        self, event: str, body: dict[str, Any], delivery: str, secret: str = GITHUB_SECRET
    ) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        return await self.post("/v1/github", raw, github_headers(event, raw, delivery, secret))

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running(settings: WebhookSettings, delivery: Delivery) -> AsyncIterator[Webhooks]:
    async with (
        WebhookServer(settings, delivery) as server,
        aiohttp.ClientSession(base_url=server.url) as http,
    ):
        yield Webhooks(http, delivery.metrics.registry, server)


def delivery_for(client: Client, task_queue: str, retry: RetryPolicy | None = None) -> Delivery:
    metrics = DeliveryMetrics.for_registry(CollectorRegistry())
    return Delivery(client, task_queue=task_queue, retry=retry, metrics=metrics)


@pytest.fixture(scope="module")
async def temporal(dev_server_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    async with recording_worker(dev_server_env.client, TASK_QUEUE):
        yield dev_server_env.client


@pytest.fixture(scope="module")
async def hooks(temporal: Client) -> AsyncIterator[Webhooks]:
    async with running(webhook_settings(), delivery_for(temporal, TASK_QUEUE)) as webhooks:
        yield webhooks


@pytest.fixture(scope="module")
async def fuzz_hooks(temporal: Client) -> AsyncIterator[Webhooks]:
    async with running(webhook_settings(), delivery_for(temporal, FUZZ_QUEUE)) as webhooks:
        yield webhooks


def signed(body: bytes, secret: str = EVENTS_SECRET) -> dict[str, str]:
    return {"X-Autopilot-Signature": sign(secret, body), "Content-Type": "application/json"}


def github_headers(event: str, body: bytes, delivery: str, secret: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "481516",
        "X-Hub-Signature-256": sign(secret, body),
        "User-Agent": "GitHub-Hookshot/simulated",
        "Content-Type": "application/json",
    }


def generic_event(operator: str, namespace: str, name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"deploy-tool-{uuid.uuid4().hex}",
        "operator": operator,
        "namespace": namespace,
        "name": name,
        "type": "SecurityAlert",
        "payload": {"reason": "manual test"},
    }
    body.update(fields)
    return body


def alertmanager_payload(
    namespace: str,
    deployment: str,
    *,
    status: str = "firing",
    fingerprint: str = "c2f5a0e1b7d94f3a",
    starts_at: str = "2025-03-14T09:26:53.589211732Z",
) -> dict[str, Any]:
    """A notification as Alertmanager 0.27 posts it: one alert on a workload, one on a node."""
    labels = {
        "alertname": "SuspiciousEgress",
        "severity": "critical",
        "namespace": namespace,
        "deployment": deployment,
        "pod": f"{deployment}-7d9c5b6f4-x2x9k",
        "prometheus": "monitoring/k8s",
    }
    return {
        "receiver": "autopilot-quarantine",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": f"{deployment} opens connections to unknown hosts",
                    "runbook_url": "https://runbooks.example/egress",
                },
                "startsAt": starts_at,
                "endsAt": "2025-03-14T10:01:00Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=egress_unknown_total",
                "fingerprint": fingerprint,
            },
            {
                "status": status,
                "labels": {"alertname": "NodeDiskPressure", "severity": "warning", "node": "w3"},
                "annotations": {"summary": "disk pressure on w3"},
                "startsAt": "2025-03-14T09:20:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=node_disk",
                "fingerprint": "0a1b2c3d4e5f6789",
            },
        ],
        "groupLabels": {"alertname": "SuspiciousEgress"},
        "commonLabels": {"alertname": "SuspiciousEgress", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="SuspiciousEgress"}',
        "truncatedAlerts": 0,
    }


REPOSITORY = {
    "id": 1296269,
    "name": "mesh-config",
    "full_name": "acme/mesh-config",
    "default_branch": "main",
    "html_url": "https://github.example/acme/mesh-config",
    "private": True,
}


def push_payload(commits: list[dict[str, Any]], ref: str = "refs/heads/main") -> dict[str, Any]:
    """A ``push`` delivery in GitHub's documented shape (the fields a receiver may read)."""
    full = [
        {
            "id": commit["id"],
            "tree_id": "9c48853fa3dc5c1c3d6f1f1cd1f2743e72652840",
            "distinct": True,
            "message": "check in services",
            "timestamp": "2025-03-14T10:15:00+01:00",
            "author": {"name": "Ada", "email": "ada@acme.example", "username": "ada"},
            "added": commit.get("added", []),
            "removed": commit.get("removed", []),
            "modified": commit.get("modified", []),
        }
        for commit in commits
    ]
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": commits[-1]["id"],
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": "https://github.example/acme/mesh-config/compare/000000...abcdef",
        "commits": full,
        "head_commit": full[-1],
        "repository": REPOSITORY,
        "pusher": {"name": "ada", "email": "ada@acme.example"},
        "sender": {"login": "ada", "id": 1},
    }


def pull_request_payload(
    action: str, *, merged: bool, labels: list[str], branch: str = "feature/x"
) -> dict[str, Any]:
    """A ``pull_request`` delivery in GitHub's documented shape."""
    return {
        "action": action,
        "number": 42,
        "pull_request": {
            "id": 1,
            "number": 42,
            "state": "closed" if action == "closed" else "open",
            "title": "canary: promote cart",
            "html_url": "https://github.example/acme/mesh-config/pull/42",
            "user": {"login": "autopilot-bot"},
            "labels": [{"id": n, "name": name, "color": "ededed"} for n, name in enumerate(labels)],
            "merged": merged,
            "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6" if merged else None,
            "head": {"label": f"acme:{branch}", "ref": branch, "sha": "6dcb09b5b5"},
            "base": {"label": "acme:main", "ref": "main", "sha": "9049f12665"},
        },
        "repository": REPOSITORY,
        "sender": {"login": "ada", "id": 1},
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- POST /v1/events --------------------------------------------------------------------


async def test_a_signed_event_with_a_spec_is_accepted_and_starts_the_workflow(
    hooks: Webhooks, temporal: Client
) -> None:
    name = unique_name()
    body = generic_event("canary", "shop", name, type="CanaryRequested", spec={"step": 10})

    status, answer = await hooks.event(body)

    assert status == 202, answer
    assert answer["accepted"] == 1
    assert answer["results"][0]["outcome"] == "delivered"
    recording = await recorded(temporal, workflow_id("canary", "shop", name))
    assert recording.input is not None
    assert recording.input.spec == {"step": 10}
    assert recording.input.target.name == name
    [event] = recording.events
    assert (event.id, event.type, event.payload) == (body["id"], "CanaryRequested", body["payload"])
    assert event.source == "webhook/events"


async def test_an_event_without_a_spec_for_a_target_with_no_workflow_answers_404(
    hooks: Webhooks, temporal: Client
) -> None:
    name = unique_name()

    status, answer = await hooks.event(generic_event("canary", "shop", name))

    assert status == 404
    assert answer["error"] == "no_such_workflow"
    assert not await exists(temporal, workflow_id("canary", "shop", name))


async def test_the_same_event_sent_twice_reaches_the_workflow_twice_with_one_event_id(
    hooks: Webhooks, temporal: Client
) -> None:
    name = unique_name()
    body = generic_event("quarantine", "shop", name, spec={})

    first, _ = await hooks.event(body)
    second, _ = await hooks.event(body)

    assert (first, second) == (202, 202)
    recording = await recorded(temporal, workflow_id("quarantine", "shop", name), events=2)
    assert recording.event_ids == [body["id"], body["id"]]


async def test_an_event_signed_with_another_secret_is_refused_with_401_and_moves_nothing(
    hooks: Webhooks, temporal: Client
) -> None:
    name = unique_name()

    status, answer = await hooks.event(generic_event("quarantine", "shop", name, spec={}), "guess")

    assert status == 401
    assert answer["error"] == "unauthorized"
    assert answer["fields"][0]["field"] == "X-Autopilot-Signature"
    assert not await exists(temporal, workflow_id("quarantine", "shop", name))


async def test_an_event_without_a_signature_is_refused_with_401(hooks: Webhooks) -> None:
    raw = json.dumps(generic_event("quarantine", "shop", unique_name(), spec={})).encode()

    status, answer = await hooks.post("/v1/events", raw, {"Content-Type": "application/json"})

    assert status == 401
    assert "missing X-Autopilot-Signature" in answer["message"]


async def test_a_body_declared_larger_than_the_limit_is_refused_with_413(hooks: Webhooks) -> None:
    raw = b" " * (MIB + 1)

    status, answer = await hooks.post("/v1/events", raw, signed(raw))

    assert status == 413
    assert answer["error"] == "body_too_large"


async def test_a_chunked_body_that_grows_past_the_limit_is_refused_with_413(
    hooks: Webhooks,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(24):  # 1.5 MiB in 64 KiB chunks, no Content-Length
            yield b" " * (64 * 1024)

    async with hooks.http.post("/v1/github", data=chunks()) as response:
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert response.status == 413
        assert (await response.json())["error"] == "body_too_large"


async def test_malformed_json_is_refused_with_400_naming_the_body(hooks: Webhooks) -> None:
    raw = b'{"id": "x", "operator": '

    status, answer = await hooks.post("/v1/events", raw, signed(raw))

    assert status == 400
    assert answer["error"] == "malformed_json"
    assert answer["fields"][0]["field"] == "body"


async def test_an_event_missing_a_field_is_refused_with_400_naming_it(hooks: Webhooks) -> None:
    body = generic_event("quarantine", "shop", unique_name())
    del body["type"]
    body["colour"] = "blue"

    status, answer = await hooks.event(body)

    assert status == 400
    assert answer["error"] == "schema_violation"
    assert {field["field"] for field in answer["fields"]} == {"type", "colour"}


async def test_an_event_naming_an_invalid_target_is_refused_with_400_naming_it(
    hooks: Webhooks,
) -> None:
    status, answer = await hooks.event(generic_event("quarantine", "Shop_Prod", "cart"))

    assert status == 400
    assert [field["field"] for field in answer["fields"]] == ["namespace"]


async def test_an_unknown_event_type_is_refused_with_400_when_types_are_configured(
    temporal: Client,
) -> None:
    settings = webhook_settings(allowed_event_types={"quarantine": ["SecurityAlert"]})
    async with running(settings, delivery_for(temporal, TASK_QUEUE)) as hooks:
        wrong_type = generic_event("quarantine", "shop", unique_name(), type="Reboot")
        wrong_operator = generic_event("canary", "shop", unique_name())

        type_status, type_answer = await hooks.event(wrong_type)
        operator_status, operator_answer = await hooks.event(wrong_operator)

    assert (type_status, operator_status) == (400, 400)
    assert type_answer["fields"][0]["field"] == "type"
    assert "known: SecurityAlert" in type_answer["message"]
    assert operator_answer["fields"][0]["field"] == "operator"


# --- POST /v1/alertmanager --------------------------------------------------------------


async def test_a_firing_alert_starts_quarantine_with_a_fingerprint_based_event_id(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace, deployment = unique_name("ns"), unique_name("cart")

    status, answer = await hooks.alerts(alertmanager_payload(namespace, deployment))

    assert status == 202, answer
    assert answer["accepted"] == 1
    assert "labels name no target" in answer["ignored"][0]["reason"]
    recording = await recorded(temporal, workflow_id("quarantine", namespace, deployment))
    assert recording.input is not None
    assert recording.input.spec == {}
    [event] = recording.events
    assert event.id == "alertmanager:c2f5a0e1b7d94f3a:2025-03-14T09:26:53.589211Z:firing"
    assert event.type == "SecurityAlert"
    assert event.source == "webhook/alertmanager"
    assert event.payload["alertname"] == "SuspiciousEgress"
    assert event.payload["severity"] == "critical"
    assert event.payload["labels"]["pod"] == f"{deployment}-7d9c5b6f4-x2x9k"
    assert event.payload["annotations"]["runbook_url"] == "https://runbooks.example/egress"
    assert event.payload["starts_at"] == "2025-03-14T09:26:53.589211Z"


async def test_a_repeated_firing_alert_carries_the_same_event_id(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace, deployment = unique_name("ns"), unique_name("cart")
    payload = alertmanager_payload(namespace, deployment)

    await hooks.alerts(payload)
    await hooks.alerts(payload)

    recording = await recorded(temporal, workflow_id("quarantine", namespace, deployment), events=2)
    assert len(set(recording.event_ids)) == 1


async def test_a_resolved_alert_signals_the_running_quarantine(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace, deployment = unique_name("ns"), unique_name("cart")
    await hooks.alerts(alertmanager_payload(namespace, deployment))

    status, answer = await hooks.alerts(
        alertmanager_payload(namespace, deployment, status="resolved")
    )

    assert status == 202, answer
    recording = await recorded(temporal, workflow_id("quarantine", namespace, deployment), events=2)
    resolved = recording.events[1]
    assert resolved.type == "AlertResolved"
    assert resolved.id == "alertmanager:c2f5a0e1b7d94f3a:2025-03-14T09:26:53.589211Z:resolved"
    assert resolved.payload["ends_at"] == "2025-03-14T10:01:00.000000Z"


async def test_a_resolved_alert_without_a_quarantine_starts_nothing(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace, deployment = unique_name("ns"), unique_name("cart")

    status, answer = await hooks.alerts(
        alertmanager_payload(namespace, deployment, status="resolved")
    )

    assert status == 202
    assert answer["results"][0]["outcome"] == "no_such_workflow"
    assert not await exists(temporal, workflow_id("quarantine", namespace, deployment))


async def test_alertmanager_without_the_bearer_token_is_refused_with_401(hooks: Webhooks) -> None:
    status, answer = await hooks.alerts(alertmanager_payload("shop", "cart"), token="wrong")
    raw = json.dumps(alertmanager_payload("shop", "cart")).encode()
    bare_status, _ = await hooks.post("/v1/alertmanager", raw, {})

    assert (status, bare_status) == (401, 401)
    assert answer["fields"][0]["field"] == "Authorization"


async def test_an_alertmanager_payload_of_another_version_is_refused_with_400(
    hooks: Webhooks,
) -> None:
    payload = alertmanager_payload("shop", "cart")
    payload["version"] = "3"
    del payload["alerts"][0]["fingerprint"]

    status, answer = await hooks.alerts(payload)

    assert status == 400
    assert {field["field"] for field in answer["fields"]} == {"version", "alerts.0.fingerprint"}


# --- POST /v1/github --------------------------------------------------------------------


async def test_a_push_checks_in_each_service_file_under_the_prefix(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace = unique_name("ns")
    delivery = str(uuid.uuid4())
    payload = push_payload(
        [
            {
                "id": "a" * 40,
                "added": [f"services/{namespace}/cart.yaml", "README.md"],
                "modified": [f"services/{namespace}/pay.yml"],
            },
            {
                "id": "b" * 40,
                "added": [f"services/{namespace}/extra/deep.yaml", f"services/{namespace}/x.yaml"],
                "modified": [f"services/{namespace}/cart.yaml"],
            },
            {"id": "c" * 40, "removed": [f"services/{namespace}/x.yaml"]},
        ]
    )

    status, answer = await hooks.github("push", payload, delivery)

    assert status == 202, answer
    assert answer["accepted"] == 2
    assert [item["item"] for item in answer["ignored"]] == [f"services/{namespace}/extra/deep.yaml"]
    cart = await recorded(temporal, workflow_id("autoroute", namespace, "cart"))
    pay = await recorded(temporal, workflow_id("autoroute", namespace, "pay"))
    assert cart.event_ids == [f"github:{delivery}:0"]
    assert pay.event_ids == [f"github:{delivery}:1"]
    assert cart.events[0].type == "ServiceCheckedIn"
    assert cart.events[0].payload["change"] == "added"
    assert cart.events[0].payload["commit"] == "b" * 40
    assert pay.events[0].payload["change"] == "modified"
    assert cart.input is not None
    assert cart.input.spec == {}


async def test_a_redelivered_push_carries_the_same_event_ids(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace = unique_name("ns")
    delivery = str(uuid.uuid4())
    payload = push_payload([{"id": "d" * 40, "added": [f"services/{namespace}/cart.yaml"]}])

    await hooks.github("push", payload, delivery)
    await hooks.github("push", payload, delivery)

    cart = await recorded(temporal, workflow_id("autoroute", namespace, "cart"), events=2)
    assert cart.event_ids == [f"github:{delivery}:0", f"github:{delivery}:0"]


async def test_a_push_removing_a_service_file_tells_its_running_workflow_and_starts_none(
    hooks: Webhooks, temporal: Client
) -> None:
    namespace = unique_name("ns")
    added = push_payload([{"id": "f" * 40, "added": [f"services/{namespace}/cart.yaml"]}])
    await hooks.github("push", added, str(uuid.uuid4()))
    await recorded(temporal, workflow_id("autoroute", namespace, "cart"))
    removal = str(uuid.uuid4())
    payload = push_payload(
        [
            {"id": "1" * 40, "removed": [f"services/{namespace}/cart.yaml"]},
            {"id": "2" * 40, "removed": [f"services/{namespace}/never-routed.yaml"]},
        ]
    )

    status, answer = await hooks.github("push", payload, removal)

    assert status == 202, answer
    cart = await recorded(temporal, workflow_id("autoroute", namespace, "cart"), events=2)
    assert cart.events[1].type == "ServiceCheckedOut"
    assert cart.events[1].id == f"github:{removal}:0"
    assert cart.events[1].payload["change"] == "removed"
    assert not await exists(temporal, workflow_id("autoroute", namespace, "never-routed"))


async def test_a_push_to_another_branch_moves_nothing(hooks: Webhooks, temporal: Client) -> None:
    namespace = unique_name("ns")
    payload = push_payload(
        [{"id": "e" * 40, "added": [f"services/{namespace}/cart.yaml"]}], ref="refs/heads/dev"
    )

    status, answer = await hooks.github("push", payload, str(uuid.uuid4()))

    assert status == 202
    assert answer["accepted"] == 0
    assert "default branch" in answer["ignored"][0]["reason"]
    assert not await exists(temporal, workflow_id("autoroute", namespace, "cart"))


async def test_pull_requests_signal_the_instance_their_label_or_branch_names(
    hooks: Webhooks, temporal: Client
) -> None:
    name = unique_name()
    await hooks.event(generic_event("canary", "shop", name, type="CanaryRequested", spec={}))
    instance = f"autopilot/canary/shop/{name}"
    merged_id, closed_id, opened_id = (str(uuid.uuid4()) for _ in range(3))

    opened = await hooks.github(
        "pull_request", pull_request_payload("opened", merged=False, labels=[instance]), opened_id
    )
    merged = await hooks.github(
        "pull_request",
        pull_request_payload("closed", merged=True, labels=["gitops", instance]),
        merged_id,
    )
    closed = await hooks.github(
        "pull_request",
        pull_request_payload("closed", merged=False, labels=[], branch=instance),
        closed_id,
    )

    assert [opened[0], merged[0], closed[0]] == [202, 202, 202]
    recording = await recorded(temporal, workflow_id("canary", "shop", name), events=4)
    assert [(event.type, event.id) for event in recording.events[1:]] == [
        ("PullRequestOpened", f"github:{opened_id}:0"),
        ("PullRequestMerged", f"github:{merged_id}:0"),
        ("PullRequestClosed", f"github:{closed_id}:0"),
    ]
    assert recording.events[2].payload["merge_commit_sha"].startswith("e5bd3914")
    assert recording.events[3].payload["named_by"] == "branch"


async def test_a_pull_request_action_that_moves_nothing_is_acknowledged(hooks: Webhooks) -> None:
    payload = pull_request_payload("synchronize", merged=False, labels=["autopilot/canary/a/b"])

    status, answer = await hooks.github("pull_request", payload, str(uuid.uuid4()))

    assert status == 202
    assert answer["accepted"] == 0
    assert "synchronize" in answer["ignored"][0]["reason"]


async def test_a_github_ping_answers_200(hooks: Webhooks) -> None:
    ping = {"zen": "Keep it logically awesome.", "hook_id": 481516, "hook": {"type": "Repository"}}

    status, answer = await hooks.github("ping", ping, str(uuid.uuid4()))

    assert status == 200
    assert answer == {"pong": True, "zen": "Keep it logically awesome."}


async def test_an_unsupported_github_event_is_refused_with_400_naming_the_header(
    hooks: Webhooks,
) -> None:
    status, answer = await hooks.github("issues", {"action": "opened"}, str(uuid.uuid4()))

    assert status == 400
    assert answer["fields"][0]["field"] == "X-GitHub-Event"


async def test_a_github_delivery_with_a_bad_signature_is_refused_with_401(hooks: Webhooks) -> None:
    payload = push_payload([{"id": "f" * 40, "added": ["services/shop/cart.yaml"]}])

    status, answer = await hooks.github("push", payload, str(uuid.uuid4()), secret="not-it")

    assert status == 401
    assert answer["fields"][0]["field"] == "X-Hub-Signature-256"


async def test_a_form_encoded_github_delivery_is_refused_with_400_saying_what_to_change(
    hooks: Webhooks,
) -> None:
    raw = b"payload=%7B%7D"
    headers = github_headers("push", raw, str(uuid.uuid4()), GITHUB_SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    status, answer = await hooks.post("/v1/github", raw, headers)

    assert status == 400
    assert "application/json" in answer["message"]


# --- health, metrics, lifecycle, outages ------------------------------------------------


async def test_healthz_answers_and_metrics_count_requests_and_deliveries(hooks: Webhooks) -> None:
    await hooks.event(generic_event("quarantine", "shop", unique_name(), spec={}))

    async with hooks.http.get("/healthz") as health:
        assert health.status == 200
        assert (await health.json())["status"] == "ok"
    async with hooks.http.get("/metrics") as metrics:
        text = await metrics.text()

    assert metrics.status == 200
    assert 'autopilot_webhook_requests_total{endpoint="/v1/events",status="202"}' in text
    assert 'autopilot_events_delivered_total{mode="signal_with_start"' in text
    assert "autopilot_events_unknown_target_total" in text


async def test_an_endpoint_without_a_secret_is_not_mounted(temporal: Client) -> None:
    settings = webhook_settings(github_secret="", alertmanager_token=None)
    async with running(settings, delivery_for(temporal, TASK_QUEUE)) as hooks:
        github_status, _ = await hooks.github("ping", {}, str(uuid.uuid4()))
        alerts_status, _ = await hooks.alerts(alertmanager_payload("shop", "cart"))

    assert (github_status, alerts_status) == (404, 404)


async def test_an_unreachable_temporal_answers_503_and_the_server_keeps_serving() -> None:
    down = await connect(f"127.0.0.1:{closed_port()}", lazy=True)
    retry = RetryPolicy(attempts=2, initial_backoff_s=0.01, rpc_timeout_s=2)
    async with running(webhook_settings(), delivery_for(down, TASK_QUEUE, retry)) as hooks:
        status, answer = await hooks.event(generic_event("quarantine", "shop", "cart", spec={}))
        async with hooks.http.get("/healthz") as health:
            health_status = health.status

    assert status == 503
    assert answer["error"] == "delivery_unavailable"
    assert answer["results"][0]["outcome"] == "failed"
    assert health_status == 200


async def test_a_temporal_that_never_answers_gets_503_after_the_response_timeout() -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read, never answer
        await reader.read()

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        mute = await connect(f"127.0.0.1:{port}", lazy=True)
        settings = webhook_settings(response_timeout_s=0.5)
        patient = RetryPolicy(deadline_s=600)  # still trying when /healthz is asked
        async with running(settings, delivery_for(mute, TASK_QUEUE, patient)) as hooks:
            status, answer = await hooks.event(generic_event("quarantine", "shop", "c", spec={}))
            async with hooks.http.get("/healthz") as health:
                inflight = (await health.json())["inflight"]
    finally:
        for writer in held:
            writer.close()
        silent.close()

    assert status == 503
    assert answer["error"] == "delivery_timeout"
    assert inflight == 1  # delivery goes on in the background; stopping the server ends it


async def test_serve_webhooks_serves_until_cancelled(temporal: Client) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(
        serve_webhooks(webhook_settings(), delivery_for(temporal, TASK_QUEUE), started=started)
    )
    await started.wait()

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


# --- fuzzing ----------------------------------------------------------------------------

ENDPOINTS = ("/v1/events", "/v1/alertmanager", "/v1/github")
HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
FUZZ_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Authorization",
            "Content-Type",
            "X-Autopilot-Signature",
            "X-Hub-Signature-256",
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "Accept",
            "User-Agent",
        ]
    )
    | st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z"),
    st.one_of(
        HEADER_VALUES,
        HEADER_VALUES.map(lambda value: f"Bearer {value}"),
        st.binary(min_size=32, max_size=32).map(lambda raw: f"sha256={raw.hex()}"),
        st.sampled_from(["push", "pull_request", "ping", "application/json"]),
    ),
    max_size=6,
)
#: Keys the endpoints know, so fuzzed objects get past the first checks. Target fields
#: (operator, namespace, name, label names) are left out: no fuzzed body can name a target.
KNOWN_KEYS = [
    "id", "type", "payload", "spec", "version", "status", "alerts", "labels", "startsAt",
    "fingerprint", "receiver", "ref", "after", "repository", "commits", "action",
    "pull_request", "zen", "added", "modified", "full_name", "default_branch",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
FUZZ_BODIES = st.binary(max_size=2048) | JSON_VALUES.map(lambda value: json.dumps(value).encode())
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


async def _nothing_reached_a_workflow(fuzz_hooks: Webhooks, temporal: Client) -> None:
    for source in ("events", "alertmanager", "github"):
        count = "autopilot_event_delivery_seconds_count"
        assert fuzz_hooks.sample(count, source=f"webhook/{source}") == 0
    started = [wf async for wf in temporal.list_workflows(f'TaskQueue="{FUZZ_QUEUE}"')]
    assert started == []


@FUZZ_SETTINGS
@given(path=st.sampled_from(ENDPOINTS), body=FUZZ_BODIES, headers=FUZZ_HEADERS)
async def test_fuzzed_requests_without_valid_credentials_are_refused_and_reach_no_workflow(
    fuzz_hooks: Webhooks, temporal: Client, path: str, body: bytes, headers: dict[str, str]
) -> None:
    status, answer = await fuzz_hooks.post(path, body, headers)

    assert status == 401, answer
    await _nothing_reached_a_workflow(fuzz_hooks, temporal)


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(ENDPOINTS),
    body=FUZZ_BODIES,
    headers=FUZZ_HEADERS,
    github_event=st.sampled_from(["push", "pull_request", "ping"]) | HEADER_VALUES,
    github_delivery=st.just(str(uuid.uuid4())) | HEADER_VALUES,
)
async def test_fuzzed_bodies_with_valid_credentials_get_a_4xx_or_an_empty_2xx(
    fuzz_hooks: Webhooks,
    temporal: Client,
    path: str,
    body: bytes,
    headers: dict[str, str],
    github_event: str,
    github_delivery: str,
) -> None:
    headers = dict(headers)
    if path == "/v1/events":
        headers["X-Autopilot-Signature"] = sign(EVENTS_SECRET, body)
    elif path == "/v1/alertmanager":
        headers["Authorization"] = f"Bearer {ALERTMANAGER_TOKEN}"
    else:
        headers["X-Hub-Signature-256"] = sign(GITHUB_SECRET, body)
        headers["X-GitHub-Event"] = github_event
        headers["X-GitHub-Delivery"] = github_delivery

    status, answer = await fuzz_hooks.post(path, body, headers)

    assert status in (200, 202, 400), answer
    if status == 400:
        assert answer["error"] in ("malformed_json", "schema_violation", "invalid_request")
        assert answer["fields"], answer
    if status == 202:
        assert answer["accepted"] == 0
        assert answer["results"] == []
    await _nothing_reached_a_workflow(fuzz_hooks, temporal)
