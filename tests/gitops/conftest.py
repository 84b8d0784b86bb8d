"""Fixtures of the GitOps tests: a FAKE GitHub per test, whose every answer is checked.

Each test that uses ``fake_github`` is also a contract test: at teardown every response the
fake served and every webhook it sent is validated against GitHub's official OpenAPI
descriptions (``tests/gitops/contract.py``), so the fake cannot drift from GitHub unseen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.github_fake.server import FakeGitHub
from tests.gitops.contract import assert_all_valid

#: The starting configuration repository: one service's mesh objects and its Deployment.
SEED = {
    "clusters/dev/shop/deployment-checkout.yaml": (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n  name: checkout\n  namespace: shop\n"
        "spec:\n  template:\n    spec:\n      containers:\n"
        "      - name: checkout\n        image: shop/checkout:1.0\n"
    ),
}


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", token="ghp_fake_token_for_tests_0123456789") as fake:
        fake.seed(SEED)
        yield fake
        exchanges, deliveries = list(fake.exchanges), list(fake.deliveries)
    assert_all_valid(exchanges, deliveries)
