"""What the Kubernetes watcher decides for one Canary: a pure function, tested as such."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.canary_watch import CANARY_FINALIZER, INVALID_PHASE
from models.revisions import pod_template_revision
from tests.watchers.support import canary, deployment
from watchers.kube.decide import AddFinalizer, Send, WriteStatus, decide
from watchers.kube.objects import ABSENT, CanaryObject, DeploymentState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def live_canary(
    status: dict[str, Any] | None = None,
    *,
    finalizer: bool = True,
    deleting: bool = False,
    **kw: Any,
) -> CanaryObject:
    raw = canary("web", **kw)
    raw["metadata"].update(
        {
            "namespace": "shop",
            "uid": "c-uid",
            "generation": 3,
            "resourceVersion": "10",
            "finalizers": [CANARY_FINALIZER] if finalizer else [],
        }
    )
    if deleting:
        raw["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    raw["status"] = status or {}
    return CanaryObject.from_raw(raw)


def live_deployment(image: str = "web:1", generation: int = 5) -> DeploymentState:
    raw = deployment("web", image)
    raw["metadata"].update({"namespace": "shop", "uid": "d-uid", "generation": generation})
    return DeploymentState.from_raw(raw)


def test_a_new_canary_gets_the_finalizer_then_starts_its_workflow_with_a_new_revision() -> None:
    target = live_deployment()

    actions = decide(live_canary(finalizer=False), target, NOW)

    assert isinstance(actions[0], AddFinalizer)
    send = actions[1]
    assert isinstance(send, Send)
    assert send.envelope.type == "NewRevision"
    assert send.envelope.payload == {"revision": target.revision, "generation": 5}
    assert send.start_spec is not None and send.start_spec["targetRef"]["name"] == "web"
    assert (send.target.namespace, send.target.name) == ("shop", "web")
    assert send.status["observedRevision"] == target.revision
    assert send.status["workflowId"] == "canary/shop/web"


def test_the_revision_is_the_pod_template_hash_the_workers_compute() -> None:
    raw = deployment("web", "web:1")

    assert DeploymentState.from_raw(raw).revision == pod_template_revision(raw["spec"]["template"])


def test_the_same_deployment_state_always_gives_the_same_event_id() -> None:
    first = decide(live_canary(), live_deployment(), NOW)
    again = decide(live_canary(), live_deployment(), datetime.now(UTC))

    assert isinstance(first[0], Send) and isinstance(again[0], Send)
    assert first[0].envelope.id == again[0].envelope.id


def test_going_back_to_an_older_template_is_a_new_event() -> None:
    before = decide(live_canary(), live_deployment("web:1", generation=1), NOW)
    back = decide(live_canary(), live_deployment("web:1", generation=3), NOW)

    assert isinstance(before[0], Send) and isinstance(back[0], Send)
    assert before[0].envelope.id != back[0].envelope.id


def test_a_revision_already_delivered_sends_nothing() -> None:
    target = live_deployment()
    status = {
        "observedRevision": target.revision,
        "targetUid": target.uid,
        "observedGeneration": 3,
        "workflowId": "canary/shop/web",
    }

    assert decide(live_canary(status), target, NOW) == []


def test_a_deleted_deployment_aborts_the_workflow_that_rolled_it_out() -> None:
    status = {"observedRevision": "abc", "targetUid": "d-uid", "workflowId": "canary/shop/web"}

    actions = decide(live_canary(status), ABSENT, NOW)

    send = actions[0]
    assert isinstance(send, Send)
    assert send.envelope.type == "TargetDeleted"
    assert send.envelope.id == "k8s:deployment/d-uid:deleted"
    assert send.start_spec is None
    assert send.status["targetUid"] is None


def test_a_canary_whose_deployment_never_existed_waits_for_it() -> None:
    actions = decide(live_canary(), ABSENT, NOW)

    assert len(actions) == 1 and isinstance(actions[0], WriteStatus)
    assert actions[0].status["message"] == "waiting for Deployment web"


def test_a_deleting_canary_aborts_and_releases_its_finalizer() -> None:
    actions = decide(live_canary(deleting=True), live_deployment(), NOW)

    assert len(actions) == 1
    send = actions[0]
    assert isinstance(send, Send) and send.release
    assert send.envelope.type == "TargetDeleted"
    assert send.envelope.id == "k8s:canary/c-uid:deleted"


def test_a_spec_the_model_refuses_is_reported_and_starts_nothing() -> None:
    bad = live_canary(analysis={"stepWeight": 60, "maxWeight": 50})

    actions = decide(bad, live_deployment(), NOW)

    assert len(actions) == 1 and isinstance(actions[0], WriteStatus)
    assert actions[0].status["phase"] == INVALID_PHASE
    assert "stepWeight 60 is above maxWeight 50" in actions[0].status["message"]


def test_a_canary_pointed_at_another_deployment_aborts_the_old_workflow_first() -> None:
    status = {"observedRevision": "abc", "targetUid": "old", "workflowId": "canary/shop/old-web"}

    actions = decide(live_canary(status), live_deployment(), NOW)

    aborted, started = actions
    assert isinstance(aborted, Send) and isinstance(started, Send)
    assert (aborted.envelope.type, aborted.target.name) == ("TargetDeleted", "old-web")
    assert (started.envelope.type, started.target.name) == ("NewRevision", "web")
