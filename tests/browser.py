"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol.

``Browser(...)`` starts ``/usr/bin/chromium --headless`` with the flags that keep it off the
network (no background networking, component updates or sync) and a fresh profile,
opens one page, and lets a test evaluate JavaScript in it (``evaluate``) and take a
screenshot (``screenshot``). ``.ci/run`` installs the package when it is missing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-extensions", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)  # fmt: skip
_LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


class Browser:
    """One headless Chromium showing ``url`` in a ``width`` x ``height`` window."""

    def __init__(self, url: str, *, width: int = 1280, height: int = 1400) -> None:
        if CHROMIUM is None:
            raise RuntimeError("no chromium on PATH: `apt-get install -y chromium`")
        self.url = url
        self.profile = Path(tempfile.mkdtemp(prefix="steadypost-chromium-"))
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.port = self._port()
        self.ws = self._connect_page()
        self._id = 0

    def _port(self) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            match = _LISTENING.search(line)
            if match:
                return int(match.group(2))
        self.close()
        raise RuntimeError("chromium did not open its DevTools port")

    def _connect_page(self) -> Any:
        import websocket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if pages:
                return websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                                   timeout=30, suppress_origin=True)
            time.sleep(0.1)
        raise RuntimeError("chromium opened no page")

    def call(self, method: str, **params: Any) -> Any:
        """One DevTools command; its result."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_loaded(self, timeout: float = 30) -> None:
        """Until the page asked for (not the first about:blank) has loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.evaluate("[location.href, document.readyState]")
            if state == [self.url, "complete"]:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.url} did not finish loading")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": metrics["width"],
                              "height": min(metrics["height"], 6000), "scale": 1}  # fmt: skip
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


__all__ = ["CHROMIUM", "Browser", "png_size"]
