"""Debian's headless Chromium, driven by Playwright, for tests of the Temporal UI.

Playwright is the maintained way to drive a browser from Python; its own browser download
is not used: it launches the distribution's ``chromium`` (``scripts/test`` installs it), so
a machine needs nothing but Debian's package and the ``playwright`` wheel. Playwright talks
to the browser over a pipe, so no DevTools port is opened either.

Why real time and not ``chromium --headless --virtual-time-budget=N --dump-dom``: virtual time
only advances while no fetch is pending, and the workflow page of a running workflow keeps a
history long poll open for as long as it runs, so the budget never runs out. Playwright's
waits (a locator that must appear) end as soon as the page shows what is expected.
"""

from __future__ import annotations

import os
import shutil

from playwright.async_api import Browser, Playwright, ViewportSize

#: Chromium flags for a quiet, self-contained headless run. Playwright adds ``--headless``,
#: a fresh profile and ``--no-sandbox`` (its ``chromium_sandbox`` is off by default; the
#: sandbox cannot start as root in a container).
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

#: Names the Chromium executable goes by (Debian's package installs ``chromium``).
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")

#: The window every page gets (screenshots have this size, in CSS pixels).
VIEWPORT = ViewportSize(width=1440, height=900)

#: Where to get it, for messages.
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium"


def find_chromium() -> str | None:
    """The path of a Chromium executable on ``PATH`` (``CHROMIUM`` overrides), or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    return None


async def launch(playwright: Playwright, executable: str) -> Browser:
    """Start headless ``executable`` under Playwright (one browser serves many pages)."""
    return await playwright.chromium.launch(
        executable_path=executable, args=list(FLAGS), headless=True
    )
