"""Every exchange has a deadline, and only SteadypostError leaves the drivers: real sockets.

Both HTTP layers (``SyncHttp``, ``AsyncHttp``) and both uploaders run against
``steadypost.testing.HostileServer`` on 127.0.0.1: an answer dripped one byte at a time
(status line, headers or body), a server reading the request body at a trickle, a silent
server, an answer cut or reset, and garbage in every part of an answer. The uploader's own
clients ("own") enforce the deadline on the socket; a client the caller passes in ("caller")
gets it between body blocks and answer parts. Deadlines here are ~1 s; the upper bounds on
wall time are generous (a loaded 2-core machine), and nothing asserts a tight lower bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from steadypost import AsyncUploader, RetryPolicy, Uploader
from steadypost._clients import default_async_client, default_client
from steadypost.errors import ConnectionLostError, Outcome, SteadypostError
from steadypost.flow import FileBody, Request, Response
from steadypost.models import Timeouts
from steadypost.testing.hostile import (
    Answer,
    Cut,
    Drip,
    Garbage,
    HostileServer,
    Reset,
    Silent,
    Wire,
)
from steadypost.transport import AsyncHttp, SyncHttp, to_httpx_timeout

MiB = 1024 * 1024
Outcome_ = Response | SteadypostError


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable set the uploader makes a plain httpx client: not under test here."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def quick(**overrides: float) -> Timeouts:
    """Small timeouts: a 1 s deadline, per-operation timeouts far longer (they must not end it)."""
    values = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 5.0, "exchange": 1.0}
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


# ------------------------------------------------------------------ drips end at the deadline


HEAD_DRIPS: dict[str, Callable[[], HostileServer]] = {
    # The status line and 4 KiB of headers, a byte every 20 ms: ~80 s.
    "headers": lambda: serve(PADDED, Drip(size=1, every_s=0.02)),
    # "100 Continue" after "100 Continue", 2000 bytes every 50 ms (~25 s), never a final answer.
    "endless-100-continue": lambda: serve(
        Answer(200), _Raw(HUNDREDS, Drip(size=2000, every_s=0.05))
    ),
}


@pytest.mark.parametrize("driver", BOTH, ids=ids)
@pytest.mark.parametrize("make_server", list(HEAD_DRIPS.values()), ids=list(HEAD_DRIPS))
def test_an_answer_head_dripped_ends_at_the_deadline(
    driver: Driver, make_server: Callable[[], HostileServer]
) -> None:
    with make_server() as server:
        outcome, elapsed = driver.send(Request("GET", f"{server.url}/x"), quick())
    missed_deadline(outcome, "1")
    assert elapsed < 5.0  # a 1 s deadline; the read timeout (10 s) never fired


@pytest.mark.parametrize("driver", ALL, ids=ids)
def test_an_answer_body_dripped_ends_at_the_deadline(driver: Driver) -> None:
    with serve(BODY, Drip(size=1, every_s=0.01, after=BODY_HEAD)) as server:  # 40 s of body
        outcome, elapsed = driver.send(Request("GET", f"{server.url}/x"), quick())
    missed_deadline(outcome, "1")
    assert elapsed < 5.0


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_a_request_body_read_at_a_trickle_ends_at_the_deadline(
    driver: Driver, tmp_path: Path
) -> None:
    # 16 MiB read at 64 KiB/s would take 4 minutes. The deadline is 1.5 s + 16 MiB / 64 MiB/s.
    # A write that makes progress now and then must still end then: httpcore gives each
    # send() the whole write timeout (10 s here), which would let one 512 KiB block take 8 s.
    body = _file(tmp_path, 16 * MiB)
    with serve(Answer(204), Wire(), body_read_rate=64 * 1024) as server:
        request = Request("PATCH", f"{server.url}/files/x", body=body)
        outcome, elapsed = driver.send(request, quick(exchange=1.5, min_rate=64 * MiB))
        received = server.body_bytes
    missed_deadline(outcome, "1.75")
    assert "16777216-byte body" in str(outcome)
    assert elapsed < 6.0
    assert received < 16 * MiB


@pytest.mark.parametrize("driver", ALL, ids=ids)
def test_a_silent_server_ends_by_the_read_timeout(driver: Driver) -> None:
    with serve(Answer(200), Silent()) as server:
        request = Request("GET", f"{server.url}/x")
        outcome, elapsed = driver.send(request, quick(read=0.5, exchange=60))
    assert "timed out" in str(lost(outcome))
    assert elapsed < 5.0


# ------------------------------------------------------------------ healthy slow exchanges pass


@pytest.mark.parametrize("driver", ALL, ids=ids)
def test_a_slow_but_steady_answer_inside_the_deadline_succeeds(driver: Driver) -> None:
    # The whole answer takes about 0.5 s, 40 bytes at a time; the deadline is 10 s.
    answer = Answer(200, (("X-Kind", "steady"),), b"s" * 400)
    with serve(answer, Drip(size=40, every_s=0.04)) as server:
        outcome, _ = driver.send(Request("GET", f"{server.url}/x"), quick(exchange=10))
    assert isinstance(outcome, Response), outcome
    assert (outcome.status, outcome.header("x-kind")) == (200, "steady")
    assert outcome.content == b"s" * 400


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_a_slow_but_steady_upload_gets_a_deadline_scaled_to_its_body(
    driver: Driver, tmp_path: Path
) -> None:
    # 2 MiB read at 1 MiB/s: about 2 s, longer than `exchange` (1 s) alone. The deadline is
    # 1 s + 2 MiB / 256 KiB/s = 9 s, so the upload is not cut.
    body = _file(tmp_path, 2 * MiB)
    with serve(Answer(204), Wire(), body_read_rate=MiB) as server:
        request = Request("PATCH", f"{server.url}/files/x", body=body)
        outcome, _ = driver.send(request, quick(min_rate=256 * 1024))
        received = server.body_bytes
    assert isinstance(outcome, Response), outcome
    assert outcome.status == 204
    assert received == 2 * MiB


# ------------------------------------------------------------------ broken answers


@pytest.mark.parametrize("driver", ALL, ids=ids)
@pytest.mark.parametrize("after", [0, 8, 40, BODY_HEAD + 100], ids=["nothing", "status-line",
                                                                    "headers", "body"])
def test_an_answer_cut_midway_is_connection_lost(driver: Driver, after: int) -> None:
    with serve(BODY, Cut(after=after)) as server:
        outcome, _ = driver.send(Request("GET", f"{server.url}/x"), quick())
    lost(outcome)


@pytest.mark.parametrize("driver", ALL, ids=ids)
def test_a_reset_is_connection_lost(driver: Driver) -> None:
    with serve(BODY, Reset()) as server:
        outcome, _ = driver.send(Request("GET", f"{server.url}/x"), quick())
    lost(outcome)


GARBAGE = {
    "letters-in-status": b"HTTP/1.1 2O4 No Content\r\n\r\n",
    "four-digit-status": b"HTTP/1.1 2040 No Content\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "binary": bytes(range(256)) * 4,
    "header-without-colon": b"HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nX-Bin: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "oversized-headers": b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 300_000 + b"\r\n\r\n",
    "bad-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "content-length-lie": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    "content-length-unicode": b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nab",
    "two-content-lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
    ),
    "gzip-that-is-not": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello"
    ),
}


@pytest.mark.parametrize("driver", ALL, ids=ids)
@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_from_the_server_is_a_steadypost_error(driver: Driver, garbage: bytes) -> None:
    with serve(Answer(200), Garbage(garbage)) as server:
        outcome, elapsed = driver.send(Request("GET", f"{server.url}/x"), quick())
    lost(outcome)  # the request went out: the server may have acted on it
    assert elapsed < 5.0


# ------------------------------------------------------------------ one deadline per exchange


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_after_a_missed_deadline_the_next_request_is_served(driver: Driver) -> None:
    timeouts = quick()

    async def twice_async() -> list[Outcome_]:
        async with driver.async_client(timeouts) as client:
            http = AsyncHttp(client, timeouts=timeouts)
            return [await _try_async(http, server) for _ in range(2)]

    with serve(BODY, Drip(size=1, every_s=0.01), wire_times=1) as server:
        if driver.kind == "sync":
            with driver.sync_client(timeouts) as client:
                http = SyncHttp(client, timeouts=timeouts)
                outcomes = [_try_sync(http, server) for _ in range(2)]
        else:
            outcomes = asyncio.run(twice_async())
    missed_deadline(outcomes[0], "1")
    assert isinstance(outcomes[1], Response)
    assert outcomes[1].content == BODY.body


# Each deadline lives in a context variable: per thread, per asyncio task. One exchange's
# headers drip (its 1 s deadline must cut it); the other's come steadily in ~5.6 s, inside its
# own 30 s deadline. Were the deadline shared, one of the two would get the other's.
DRIPPING_HEAD = (PADDED, Drip(size=1, every_s=0.02))
STEADY_HEAD = (PADDED, Drip(size=300, every_s=0.4))


def test_threads_sharing_a_client_keep_their_own_deadlines() -> None:
    with serve(*DRIPPING_HEAD) as dripping, serve(*STEADY_HEAD) as steady, default_client(
        quick()
    ) as client:
        results: dict[str, tuple[Outcome_, float]] = {}

        def run(name: str, server: HostileServer, timeouts: Timeouts) -> None:
            start = time.monotonic()
            results[name] = (_try_sync(SyncHttp(client, timeouts=timeouts), server),
                             time.monotonic() - start)  # fmt: skip

        threads = [
            threading.Thread(target=run, args=("drip", dripping, quick())),
            threading.Thread(target=run, args=("steady", steady, quick(exchange=30))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    missed_deadline(results["drip"][0], "1")
    assert results["drip"][1] < 5.0
    assert isinstance(results["steady"][0], Response)


def test_asyncio_tasks_sharing_a_client_keep_their_own_deadlines() -> None:
    async def timed(http: AsyncHttp, server: HostileServer) -> tuple[Outcome_, float]:
        start = time.monotonic()
        return await _try_async(http, server), time.monotonic() - start

    async def both(dripping: HostileServer, steady: HostileServer) -> list[tuple[Outcome_, float]]:
        async with default_async_client(quick()) as client:
            return list(await asyncio.gather(
                timed(AsyncHttp(client, timeouts=quick()), dripping),
                timed(AsyncHttp(client, timeouts=quick(exchange=30)), steady),
            ))  # fmt: skip

    with serve(*DRIPPING_HEAD) as dripping, serve(*STEADY_HEAD) as steady:
        (drip, drip_s), (ok, _) = asyncio.run(both(dripping, steady))
    missed_deadline(drip, "1")
    assert drip_s < 5.0
    assert isinstance(ok, Response)
    assert ok.content == PADDED.body


def test_a_write_that_progresses_now_and_then_still_ends_at_the_deadline() -> None:
    # httpcore's SyncStream.write gives each send() the whole write timeout, so a reader that
    # takes 4 KiB every 20 ms would hold a 2 MiB write for ~10 s. Small socket buffers make
    # send() return often; with big ones Linux wakes a writer too rarely to show it.
    import httpcore

    from steadypost._socket_deadline import _Backend
    from steadypost.transport import _CURRENT, Deadline

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stream = _Backend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=5.0)
    stream.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    theirs, _ = listener.accept()
    done = threading.Event()

    def trickle() -> None:
        while not done.wait(0.02):
            theirs.recv(4096)

    reader = threading.Thread(target=trickle, daemon=True)
    reader.start()
    deadline = Deadline(quick(exchange=0.5), Request("PATCH", "http://127.0.0.1/x"))
    token = _CURRENT.set(deadline)
    start = time.monotonic()
    try:
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x" * (2 * MiB), timeout=10.0)
    finally:
        _CURRENT.reset(token)
        done.set()
        reader.join(2)
        for sock in (theirs, listener):
            sock.close()
        stream.close()
    assert time.monotonic() - start < 3.0
    assert deadline.hit


# ------------------------------------------------------------------ the uploaders, end to end


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    ("behaviour", "wire"),
    [
        ("honest", Drip(size=1, every_s=0.2)),  # every PATCH answer would take ~25 s
        ("honest", Silent()),
        ("cut-mid-answer", None),
        ("garbage-status", None),
        ("honest", Reset()),  # after storing the bytes
    ],
    ids=["drip", "silent", "cut-mid-answer", "garbage-status", "reset"],
)
def test_an_upload_through_a_hostile_wire_ends_with_every_byte(
    kind: str, behaviour: str, wire: Wire | None, tmp_path: Path
) -> None:
    data = hashlib.sha256(b"seed").digest() * 9375  # 300,000 bytes, 3 chunks
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    options = {
        "timeouts": quick(read=0.5, min_rate=10 * MiB), "chunk_size": 100_000,
        "retry": RetryPolicy(base_s=0.01, cap_s=0.05),
    }  # fmt: skip
    with HostileServer(behaviour, wire=wire, wire_methods={"PATCH"}) as server:
        start = time.monotonic()
        if kind == "sync":
            with Uploader(**options) as up:  # type: ignore[arg-type]
                result = up.upload(path, server.endpoint)
        else:

            async def go() -> object:
                async with AsyncUploader(**options) as up:  # type: ignore[arg-type]
                    return await up.upload(path, server.endpoint)

            result = asyncio.run(go())
        elapsed = time.monotonic() - start
        stored, heads = server.stored(), server.count("HEAD")
    assert getattr(result, "offset", None) == len(data)
    assert stored == data
    assert heads >= 2  # PATCH answers really failed: the client asked for the offset
    assert elapsed < 30.0
    assert server.errors == []


# ------------------------------------------------------------------ Timeouts


def test_timeouts_defaults_and_the_deadline_formula() -> None:
    t = Timeouts()
    assert (t.exchange, t.min_rate) == (120.0, 16 * 1024)
    assert t.deadline_s(0) == 120.0
    assert t.deadline_s(64 * MiB) == 120.0 + 4096.0
    assert t.deadline_s(1000, read_override=300.0) == 300.0 + 1000 / (16 * 1024)
    assert t.deadline_s(1000, read_override=5.0) == 120.0 + 1000 / (16 * 1024)


@pytest.mark.parametrize("field", ["connect", "read", "write", "pool", "exchange", "min_rate"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_timeouts_refuse_what_is_not_a_positive_number(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"Timeouts.{field} must be a positive number"):
        Timeouts(**{field: value})  # type: ignore[arg-type]


def test_timeouts_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Timeouts(10.0)  # type: ignore[misc]


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class _Raw(Wire):
    """Send ``data`` (not the answer) the way ``wire`` sends."""

    data: bytes
    wire: Wire

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        return self.wire.send(sock, self.data, stop)


def _file(tmp_path: Path, size: int) -> FileBody:
    path = tmp_path / f"body-{size}"
    with path.open("wb") as f:
        f.truncate(size)
    st = path.stat()
    return FileBody(str(path), 0, size, st.st_size, st.st_mtime_ns)


def _try_sync(http: SyncHttp, server: HostileServer) -> Outcome_:
    try:
        return http.send(Request("GET", f"{server.url}/x"))
    except SteadypostError as exc:
        return exc


async def _try_async(http: AsyncHttp, server: HostileServer) -> Outcome_:
    try:
        return await http.send(Request("GET", f"{server.url}/x"))
    except SteadypostError as exc:
        return exc
