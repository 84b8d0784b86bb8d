"""Headless Chromium driven over the DevTools protocol, for tests of the Temporal UI.

Why not ``chromium --headless --virtual-time-budget=N --dump-dom``: virtual time only
advances while no network fetch is pending, and the Temporal UI's workflow page keeps a
long poll open (``history?waitNewEvent=true``) for as long as the workflow runs, so the
budget never runs out and Chromium never dumps. Driving the browser over the DevTools
protocol (a WebSocket on loopback) lets a test wait, in real time, until the rendered page
shows what it expects, then read the DOM, click a tab and take a screenshot.

Only the handful of protocol commands the tests need are wrapped; messages are sent one at
a time and answered in order, which keeps the client to a few lines.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

#: Chromium's own flags for a quiet, self-contained headless run (a fresh profile each time).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)

#: Names the Chromium executable goes by (Debian's package installs ``chromium``).
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")

#: Seconds one DevTools command may take (a screenshot of a busy page is the slowest).
CALL_TIMEOUT_S = 60

#: Where to get it, for messages.
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium"


class BrowserError(RuntimeError):
    """Chromium did not start, or a page never showed what was expected."""


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


class Chromium:
    """One headless Chromium with one page, used as an async context manager.

    Example:
        >>> async with Chromium(find_chromium()) as browser:  # doctest: +SKIP
        ...     await browser.open("http://127.0.0.1:8233/namespaces/default/workflows")
        ...     await browser.wait_for_text("Workflows")
        ...     await browser.screenshot(Path("artifacts/list.png"))
    """

    def __init__(self, executable: str, *, width: int = 1400, height: int = 1000) -> None:
        """Describe the browser; nothing starts until ``async with``.

        Args:
            executable: The Chromium binary.
            width: Window width in CSS pixels (screenshots have this size).
            height: Window height in CSS pixels.
        """
        self.executable = executable
        self.size = (width, height)
        self._profile = Path(tempfile.mkdtemp(prefix="autopilot-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Chromium:
        argv = [
            self.executable,
            *FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            port = await self._devtools_port()
            self._session = aiohttp.ClientSession()
            async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t.get("type") == "page")
            self._socket = await self._session.ws_connect(
                page["webSocketDebuggerUrl"], max_msg_size=0
            )
            await self.call("Page.enable")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the browser (the one this object started) and delete its profile."""
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                await asyncio.to_thread(self._process.wait, 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _devtools_port(self) -> int:
        """Read the port Chromium chose (it writes ``DevToolsActivePort`` in the profile)."""
        marker = self._profile / "DevToolsActivePort"
        for _ in range(300):
            if self._process is not None and self._process.poll() is not None:
                raise BrowserError(f"chromium exited at start (code {self._process.returncode})")
            text = marker.read_text() if marker.exists() else ""
            if text.strip():
                return int(text.split()[0])
            await asyncio.sleep(0.1)
        raise BrowserError("chromium did not open its DevTools port within 30s")

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        assert self._socket is not None, "use the browser inside 'async with'"
        message_id = next(self._ids)
        await self._socket.send_json({"id": message_id, "method": method, "params": params})
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                async for message in self._socket:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(message.data)
                    if data.get("id") != message_id:
                        continue
                    if "error" in data:
                        error = data["error"]
                        raise BrowserError(f"{method}: {error.get('message', error)}")
                    result: dict[str, Any] = data.get("result", {})
                    return result
        except TimeoutError:
            raise BrowserError(
                f"chromium did not answer {method} within {CALL_TIMEOUT_S}s"
            ) from None
        raise BrowserError(f"DevTools connection closed during {method}")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    async def open(self, url: str) -> None:
        """Navigate the page to ``url`` and wait until the new document has replaced the old.

        The old document is marked first, so text read afterwards never comes from the page
        being left. The app itself may still be loading: wait for its text next.
        """
        await self.evaluate("window.__autopilotLeaving = true")
        result = await self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        for _ in range(240):
            if await self.evaluate("window.__autopilotLeaving === undefined"):
                return
            await asyncio.sleep(0.25)
        raise BrowserError(f"{url} never replaced the previous page")

    async def text(self, frame_id: str | None = None) -> str:
        """The rendered text of the page, or of the same-origin iframe with id ``frame_id``."""
        if frame_id is None:
            expression = "document.body ? document.body.innerText : ''"
        else:
            expression = (
                f"(() => {{ const f = document.getElementById({json.dumps(frame_id)});"
                " const d = f && f.contentDocument;"
                " return d && d.body ? d.body.innerText : ''; })()"
            )
        value = await self.evaluate(expression)
        return value if isinstance(value, str) else ""

    async def wait_for_text(
        self, *needles: str, frame_id: str | None = None, attempts: int = 240
    ) -> str:
        """Poll the rendered text until it contains every needle; return that text.

        A functional wait: it ends as soon as the page shows them (about 60 s at most).

        Raises:
            BrowserError: They never all appeared; the message has the last text seen.
        """
        text = ""
        for _ in range(attempts):
            text = await self.text(frame_id)
            if all(needle in text for needle in needles):
                return text
            await asyncio.sleep(0.25)
        missing = [needle for needle in needles if needle not in text]
        where = f"iframe #{frame_id}" if frame_id else "page"
        raise BrowserError(f"the {where} never showed {missing}; last text:\n{text[:3000]}")

    async def row_text(self, needle: str) -> str | None:
        """The text of the first table row that contains ``needle``, if any."""
        value = await self.evaluate(
            "(() => { const r = [...document.querySelectorAll('tr')]"
            f".find(row => row.innerText.includes({json.dumps(needle)}));"
            " return r ? r.innerText : null; })()"
        )
        return value if isinstance(value, str) else None

    async def click(self, element_id: str) -> None:
        """Click the element with this id, as a user would."""
        found = await self.evaluate(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"no element #{element_id} on the page")

    async def html(self) -> str:
        """The rendered DOM, serialised."""
        value = await self.evaluate("document.documentElement.outerHTML")
        return value if isinstance(value, str) else ""

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the visible page to ``path``."""
        result = await self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path
