"""Fixtures of the browser tests: Debian's Chromium under Playwright, one fresh page per test,
and the canary operator's in-process worker (shared with ``tests/canary/``).

Chromium comes from the Debian package (``scripts/test`` installs it). Without it the tests
skip, except in CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.chromium import INSTALL_HINT, VIEWPORT, find_chromium, launch

# The canary worker on the cluster's Temporal, exactly as the canary tests get it.
from tests.canary.conftest import canary_env, rollouts

__all__ = ["browser", "canary_env", "chromium", "page", "rollouts"]


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


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the session (pages are cheap, browsers are not)."""
    async with async_playwright() as playwright:
        started = await launch(playwright, chromium)
        try:
            yield started
        finally:
            await started.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a context of its own: no cookies or saved UI settings from another test."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield await context.new_page()
    finally:
        await context.close()
