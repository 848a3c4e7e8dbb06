"""Drive Debian's headless `chromium` over the DevTools protocol (a websocket), no extra browser build.

`open_page(url, width)` loads a page at a viewport width and returns what the tests assert on:
every console error (console.error, uncaught exceptions, failed resource loads, CSP and other
browser-logged errors), the page's text, its HTML and its scroll width, and saves a full-page
screenshot. chromium is installed by scripts/install-test-tools (run by `scripts/dev test`).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HANG_GUARD = 60.0  # seconds: only so a broken browser cannot hang the suite; nothing is timed


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run scripts/install-test-tools (scripts/dev test does)")
    return found


@dataclass
class Page:
    url: str
    width: int
    console_errors: list[str] = field(default_factory=list)
    text: str = ""
    html: str = ""
    scroll_width: int = 0
    screenshot: Path | None = None
    # Elements whose content is wider than they are, scrolling sideways inside the page (tag#id.class)
    sideways: list[str] = field(default_factory=list)
    # The smallest text in an inline SVG chart as drawn on screen (CSS px); None without charts
    smallest_chart_text: float | None = None
    script_result: Any = None


class _DevTools:
    def __init__(self, ws_url: str) -> None:
        self.ws = connect(ws_url, max_size=None, open_timeout=HANG_GUARD)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + HANG_GUARD
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def drain(self, seconds: float) -> None:
        """Collect events that arrive shortly after load (late console messages)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return


def _console_errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                        for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append("uncaught: " + str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    return errors


def open_page(url: str, width: int, name: str, height: int = 900, script: str | None = None) -> Page:
    """Load `url` at `width` CSS pixels, collect console errors and the DOM, save a screenshot.
    `script` (JavaScript, e.g. choosing a filter as a user would) runs after loading, before the
    DOM is read; its value is `page.script_result`."""
    # chromium's helper processes may still be closing files in the profile as it is removed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group: ended with all its helpers below
        )
        try:
            ws_url = None
            for line in browser.stderr:  # type: ignore[union-attr]
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                if found:
                    ws_url = found.group(1)
                    break
            assert ws_url, "chromium did not start its DevTools endpoint"
            # keep reading its log so a full pipe never blocks the browser
            threading.Thread(target=lambda: [None for _ in browser.stderr], daemon=True).start()  # type: ignore[union-attr]
            tools = _DevTools(ws_url)
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                tools.call(f"{domain}.enable", session=session)
            tools.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
                       session=session)
            tools.events.clear()
            tools.call("Page.navigate", {"url": url}, session=session)
            tools.wait_for("Page.loadEventFired")
            tools.drain(0.3)

            def evaluate(expression: str) -> Any:
                return tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                  session=session)["result"].get("value")

            page = Page(url, width)
            if script:
                page.script_result = evaluate(script)
                tools.drain(0.2)
            page.text = evaluate("document.body ? document.body.innerText : ''")
            page.html = evaluate("document.documentElement.outerHTML")
            page.scroll_width = int(evaluate("document.documentElement.scrollWidth"))
            page.sideways = evaluate("""[...document.querySelectorAll('body *')].filter(e => {
                const x = getComputedStyle(e).overflowX;
                return (x === 'auto' || x === 'scroll') && e.scrollWidth > e.clientWidth + 1;
            }).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal
                === undefined ? '.' + e.className : ''))""") or []
            page.smallest_chart_text = evaluate("""(() => { const h = [...document.querySelectorAll('svg text')]
                .map(t => t.getBoundingClientRect().height).filter(x => x > 0);
                return h.length ? Math.min(...h) : null; })()""")
            shot = tools.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                              session=session)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot = ARTIFACTS / f"{name}-{width}.png"
            page.screenshot.write_bytes(base64.b64decode(shot["data"]))
            page.console_errors = _console_errors(tools.events)
            tools.ws.close()
            return page
        finally:
            _end(browser)


def _end(browser: subprocess.Popen[str]) -> None:
    """End the chromium this module started, and its helper processes (same process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(browser.pid, sig)
        except ProcessLookupError:
            return
        try:
            browser.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def assert_clean(page: Page) -> None:
    assert not page.console_errors, f"console errors on {page.url} at {page.width}px: {page.console_errors}"


def submit_form(url: str, fields: dict[str, str], checks: list[str], submit: str, name: str,
                width: int = 800) -> Page:
    """Load `url` with the page's own scripts disabled, type `fields` (CSS selector -> text) and
    tick `checks` as a person would (focus, key input, mouse click), press `submit`, and return
    the page the form's POST led to: proof that the form works without JavaScript."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            ws_url = None
            for line in browser.stderr:  # type: ignore[union-attr]
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                if found:
                    ws_url = found.group(1)
                    break
            assert ws_url, "chromium did not start its DevTools endpoint"
            threading.Thread(target=lambda: [None for _ in browser.stderr], daemon=True).start()  # type: ignore[union-attr]
            tools = _DevTools(ws_url)
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "DOM"):
                tools.call(f"{domain}.enable", session=session)
            tools.call("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
            tools.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
            tools.events.clear()
            tools.call("Page.navigate", {"url": url}, session=session)
            tools.wait_for("Page.loadEventFired")

            def node(selector: str) -> int:
                root = tools.call("DOM.getDocument", session=session)["root"]["nodeId"]
                found = tools.call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=session)
                assert found["nodeId"], f"no {selector} on {url}"
                return found["nodeId"]

            def click(selector: str) -> None:
                quad = tools.call("DOM.getBoxModel", {"nodeId": node(selector)}, session=session)["model"]["content"]
                x, y = (quad[0] + quad[4]) / 2, (quad[1] + quad[5]) / 2
                for kind in ("mousePressed", "mouseReleased"):
                    tools.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                            "clickCount": 1}, session=session)

            for selector, text in fields.items():
                tools.call("DOM.focus", {"nodeId": node(selector)}, session=session)
                tools.call("Input.insertText", {"text": text}, session=session)
            for selector in checks:
                click(selector)
            tools.events.clear()
            click(submit)
            tools.wait_for("Page.loadEventFired")
            tools.drain(0.3)
            page = Page(url, width)
            document = tools.call("DOM.getDocument", {"depth": -1}, session=session)["root"]["nodeId"]
            page.html = tools.call("DOM.getOuterHTML", {"nodeId": document}, session=session)["outerHTML"]
            page.text = re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(style|head)\b.*?</\1>", " ", page.html))
            page.text = " ".join(page.text.split())
            shot = tools.call("Page.captureScreenshot", {"format": "png"}, session=session)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot = ARTIFACTS / f"{name}-{width}.png"
            page.screenshot.write_bytes(base64.b64decode(shot["data"]))
            page.console_errors = _console_errors(tools.events)
            tools.ws.close()
            return page
        finally:
            _end(browser)
