"""Helpers for the driver tests on real sockets (``test_driver_*.py``).

``Driver`` sends one request through ``SyncHttp`` or ``AsyncHttp``, with the uploader's own
httpx client ("own": the exchange deadline enforced on the socket) or a plain one ("caller").
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from steadypost.drivers.clients import default_async_client, default_client
from steadypost.drivers.files import snapshot_file
from steadypost.drivers.http import AsyncHttp, SyncHttp, to_httpx_timeout
from steadypost.errors import ConnectionLostError, Outcome, SteadypostError
from steadypost.flow import FileBody, Request, Response
from steadypost.models import Timeouts
from steadypost.testing.hostile import Answer, HostileServer, Wire

MiB = 1024 * 1024
Outcome_ = Response | SteadypostError


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable set the uploader makes a plain httpx client: not under test here."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def quick(**overrides: float) -> Timeouts:
    """Small timeouts: a 0.5 s deadline; per-operation timeouts far longer (never the cause)."""
    values = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 5.0, "exchange": 0.5}
    return Timeouts(**{**values, **overrides})


@dataclass(frozen=True)
class Driver:
    kind: str  # "sync" | "async"
    client: str  # "own" (the uploader's clients) | "caller" (a plain httpx client)

    def send(self, request: Request, timeouts: Timeouts) -> tuple[Outcome_, float]:
        """Send once: the answer or the SteadypostError, and the wall time (all else escapes)."""
        start = time.monotonic()
        if self.kind == "sync":
            outcome = self._send_sync(request, timeouts)
        else:
            outcome = asyncio.run(self._send_async(request, timeouts))
        return outcome, time.monotonic() - start

    def _send_sync(self, request: Request, timeouts: Timeouts) -> Outcome_:
        with self.sync_client(timeouts) as client:
            try:
                return SyncHttp(client, timeouts=timeouts).send(request)
            except SteadypostError as exc:
                return exc

    async def _send_async(self, request: Request, timeouts: Timeouts) -> Outcome_:
        async with self.async_client(timeouts) as client:
            try:
                return await AsyncHttp(client, timeouts=timeouts).send(request)
            except SteadypostError as exc:
                return exc

    def sync_client(self, timeouts: Timeouts) -> httpx.Client:
        if self.client == "own":
            return default_client(timeouts)
        return httpx.Client(timeout=to_httpx_timeout(timeouts))

    def async_client(self, timeouts: Timeouts) -> httpx.AsyncClient:
        if self.client == "own":
            return default_async_client(timeouts)
        return httpx.AsyncClient(timeout=to_httpx_timeout(timeouts))


BOTH = [Driver("sync", "own"), Driver("async", "own")]
ALL = [*BOTH, Driver("sync", "caller"), Driver("async", "caller")]


def ids(driver: Driver) -> str:
    return f"{driver.kind}-{driver.client}"


def answering(answer: Answer) -> Callable[..., Answer]:
    return lambda seen, body: answer


def serve(answer: Answer, wire: Wire, **options: object) -> HostileServer:
    return HostileServer(app=answering(answer), wire=wire, **options)  # type: ignore[arg-type]


def lost(outcome: Outcome_) -> ConnectionLostError:
    assert isinstance(outcome, ConnectionLostError), outcome
    assert outcome.outcome is Outcome.AMBIGUOUS
    return outcome


def missed_deadline(outcome: Outcome_, seconds: str) -> None:
    message = str(lost(outcome))
    assert f"did not come within {seconds} s" in message
    assert "exchange deadline" in message


PADDED = Answer(200, (("X-Pad", "p" * 4000),), b"ok")  # 4 KiB of headers
BODY = Answer(200, (("Content-Type", "text/plain"),), b"b" * 4000)
BODY_HEAD = len(BODY.encode(head_only=True))
HUNDREDS = b"HTTP/1.1 100 Continue\r\n\r\n" * 40_000  # informational answers, never a final one


@dataclass(frozen=True)
class Raw(Wire):
    """Send ``data`` (not the answer) the way ``wire`` sends."""

    data: bytes
    wire: Wire

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        return self.wire.send(sock, self.data, stop)


def file_body(tmp_path: Path, size: int) -> FileBody:
    path = tmp_path / f"body-{size}"
    with path.open("wb") as f:
        f.truncate(size)
    return FileBody(snapshot_file(path), 0, size)


def try_sync(http: SyncHttp, server: HostileServer) -> Outcome_:
    try:
        return http.send(Request("GET", f"{server.url}/x"))
    except SteadypostError as exc:
        return exc


async def try_async(http: AsyncHttp, server: HostileServer) -> Outcome_:
    try:
        return await http.send(Request("GET", f"{server.url}/x"))
    except SteadypostError as exc:
        return exc
