"""The one HTTP retry policy, decided without a server: what is retried, and how long it waits."""

from __future__ import annotations

import pytest

from service.http_retry import KUBE, PROMETHEUS, counted_retry, retry_after_s


@pytest.mark.parametrize("policy", [KUBE, PROMETHEUS], ids=lambda p: p.target)
def test_every_backoff_waits_and_grows_up_to_its_cap(policy):
    for retry in range(1, 12):
        ceiling = min(policy.backoff_max_s, policy.backoff_s * 2 ** (retry - 1))
        waits = [policy.backoff(retry) for _ in range(50)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert policy.backoff(1) > 0  # never a tight loop, not even the first retry


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST", "PATCH"])
def test_a_429_is_retried_whatever_the_verb_since_the_server_did_not_process_it(method):
    assert counted_retry(KUBE).is_retry(method, 429, has_retry_after=True)


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("PUT", True), ("POST", False)])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_retried_only_for_a_verb_that_may_be_sent_twice(method, retried, status):
    assert counted_retry(KUBE).is_retry(method, status) is retried


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_answers_no_resend_can_change_are_not_retried(status):
    assert not counted_retry(KUBE).is_retry("GET", status)


def test_no_retry_is_left_once_the_policy_has_spent_them():
    spent = counted_retry(KUBE).new(total=0)

    assert not spent.is_retry("GET", 503)
    assert spent.policy == KUBE  # every attempt keeps the policy


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "3"}, 3.0), ({"Retry-After": "soon"}, None), ({}, None), (None, None)],
)
def test_retry_after_is_read_in_seconds(headers, seconds):
    assert retry_after_s(headers) == seconds
