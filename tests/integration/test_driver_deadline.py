"""Every exchange has a deadline: drips end in bounded time on real sockets.

Both HTTP layers (``SyncHttp``, ``AsyncHttp``) run against
``steadypost.testing.HostileServer`` on 127.0.0.1: an answer dripped one byte at a time
(status line, headers or body), a request body read at a trickle, a silent server, and
healthy slow exchanges that must not be cut. The uploader's own clients ("own") enforce the
deadline on the socket; a client the caller passes in ("caller") gets it between body blocks
and answer parts. Deadlines here are 0.5-1 s; the upper bounds on wall time are generous (a
loaded 2-core machine), and nothing asserts a tight lower bound.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from socket_drivers import (
    ALL,
    BODY,
    BODY_HEAD,
    BOTH,
    PADDED,
    Driver,
    MiB,
    Outcome_,
    Raw,
    file_body,
    ids,
    lost,
    missed_deadline,
    no_proxies,  # noqa: F401 (autouse: importing it applies it)
    quick,
    serve,
    try_async,
    try_sync,
)
from steadypost.drivers.clients import default_async_client, default_client
from steadypost.drivers.http import AsyncHttp, SyncHttp
from steadypost.errors import ConnectFailedError, Outcome
from steadypost.flow import Request, Response
from steadypost.models import Timeouts
from steadypost.testing.hostile import Answer, Drip, HostileServer, Silent, Wire

HUNDREDS = b"HTTP/1.1 100 Continue\r\n\r\n" * 40_000  # informational answers, never a final one


# ------------------------------------------------------------------ drips end at the deadline


HEAD_DRIPS: dict[str, Callable[[], HostileServer]] = {
    # The status line and 4 KiB of headers, a byte every 20 ms: ~80 s.
    "headers": lambda: serve(PADDED, Drip(size=1, every_s=0.02)),
    # "100 Continue" after "100 Continue", 2000 bytes every 50 ms (~25 s), never a final answer.
    "endless-100-continue": lambda: serve(
        Answer(200), Raw(HUNDREDS, Drip(size=2000, every_s=0.05))
    ),
}


@pytest.mark.parametrize("driver", BOTH, ids=ids)
@pytest.mark.parametrize("make_server", list(HEAD_DRIPS.values()), ids=list(HEAD_DRIPS))
def test_an_answer_head_dripped_ends_at_the_deadline(
    driver: Driver, make_server: Callable[[], HostileServer]
) -> None:
    with make_server() as server:
        outcome, elapsed = driver.send(Request("GET", f"{server.url}/x"), quick())
    missed_deadline(outcome, "0.5")
    assert elapsed < 5.0  # a 0.5 s deadline; the read timeout (10 s) never fired


@pytest.mark.parametrize("driver", ALL, ids=ids)
def test_an_answer_body_dripped_ends_at_the_deadline(driver: Driver) -> None:
    with serve(BODY, Drip(size=1, every_s=0.01, after=BODY_HEAD)) as server:  # 40 s of body
        outcome, elapsed = driver.send(Request("GET", f"{server.url}/x"), quick())
    missed_deadline(outcome, "0.5")
    assert elapsed < 5.0


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_a_request_body_read_at_a_trickle_ends_at_the_deadline(
    driver: Driver, tmp_path: Path
) -> None:
    # 16 MiB read at 64 KiB/s would take 4 minutes. The deadline is 0.75 s + 16 MiB / 64 MiB/s.
    # A write that makes progress now and then must still end then: httpcore gives each
    # send() the whole write timeout (10 s here), which would let one 512 KiB block take 8 s.
    body = file_body(tmp_path, 16 * MiB)
    with serve(Answer(204), Wire(), body_read_rate=64 * 1024) as server:
        request = Request("PATCH", f"{server.url}/files/x", body=body)
        outcome, elapsed = driver.send(request, quick(exchange=0.75, min_rate=64 * MiB))
        received = server.body_bytes
    missed_deadline(outcome, "1")
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
    # 1 MiB read at 1 MiB/s: about 1 s, longer than `exchange` (0.5 s) alone. The deadline is
    # 0.5 s + 1 MiB / 256 KiB/s = 4.5 s, so the upload is not cut.
    body = file_body(tmp_path, MiB)
    with serve(Answer(204), Wire(), body_read_rate=MiB) as server:
        request = Request("PATCH", f"{server.url}/files/x", body=body)
        outcome, _ = driver.send(request, quick(exchange=0.5, min_rate=256 * 1024))
        received = server.body_bytes
    assert isinstance(outcome, Response), outcome
    assert outcome.status == 204
    assert received == MiB


# ------------------------------------------------------------------ one deadline per exchange


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_after_a_missed_deadline_the_next_request_is_served(driver: Driver) -> None:
    timeouts = quick()

    async def twice_async() -> list[Outcome_]:
        async with driver.async_client(timeouts) as client:
            http = AsyncHttp(client, timeouts=timeouts)
            return [await try_async(http, server) for _ in range(2)]

    with serve(BODY, Drip(size=1, every_s=0.01), wire_times=1) as server:
        if driver.kind == "sync":
            with driver.sync_client(timeouts) as client:
                http = SyncHttp(client, timeouts=timeouts)
                outcomes = [try_sync(http, server) for _ in range(2)]
        else:
            outcomes = asyncio.run(twice_async())
    missed_deadline(outcomes[0], "0.5")
    assert isinstance(outcomes[1], Response)
    assert outcomes[1].content == BODY.body


# Each deadline lives in a context variable: per thread, per asyncio task. One exchange's
# headers drip (its 0.5 s deadline must cut it); the other's come steadily in ~3.5 s, inside
# its own 30 s deadline. Were the deadline shared, one of the two would get the other's.
DRIPPING_HEAD = (PADDED, Drip(size=1, every_s=0.02))
STEADY_HEAD = (PADDED, Drip(size=300, every_s=0.25))


def test_threads_sharing_a_client_keep_their_own_deadlines() -> None:
    with serve(*DRIPPING_HEAD) as dripping, serve(*STEADY_HEAD) as steady, default_client(
        quick()
    ) as client:
        results: dict[str, tuple[Outcome_, float]] = {}

        def run(name: str, server: HostileServer, timeouts: Timeouts) -> None:
            start = time.monotonic()
            results[name] = (try_sync(SyncHttp(client, timeouts=timeouts), server),
                             time.monotonic() - start)  # fmt: skip

        threads = [
            threading.Thread(target=run, args=("drip", dripping, quick(exchange=0.5))),
            threading.Thread(target=run, args=("steady", steady, quick(exchange=30))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    missed_deadline(results["drip"][0], "0.5")
    assert results["drip"][1] < 3.0
    assert isinstance(results["steady"][0], Response)


def test_asyncio_tasks_sharing_a_client_keep_their_own_deadlines() -> None:
    async def timed(http: AsyncHttp, server: HostileServer) -> tuple[Outcome_, float]:
        start = time.monotonic()
        return await try_async(http, server), time.monotonic() - start

    async def both(dripping: HostileServer, steady: HostileServer) -> list[tuple[Outcome_, float]]:
        async with default_async_client(quick()) as client:
            return list(await asyncio.gather(
                timed(AsyncHttp(client, timeouts=quick(exchange=0.5)), dripping),
                timed(AsyncHttp(client, timeouts=quick(exchange=30)), steady),
            ))  # fmt: skip

    with serve(*DRIPPING_HEAD) as dripping, serve(*STEADY_HEAD) as steady:
        (drip, drip_s), (ok, _) = asyncio.run(both(dripping, steady))
    missed_deadline(drip, "0.5")
    assert drip_s < 3.0
    assert isinstance(ok, Response)
    assert ok.content == PADDED.body


def test_a_write_that_progresses_now_and_then_still_ends_at_the_deadline() -> None:
    # httpcore's SyncStream.write gives each send() the whole write timeout, so a reader that
    # takes 4 KiB every 20 ms would hold a 2 MiB write for ~10 s. Small socket buffers make
    # send() return often; with big ones Linux wakes a writer too rarely to show it.
    import httpcore

    from steadypost.drivers.http import _CURRENT, Deadline
    from steadypost.drivers.socket_deadline import _Backend

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


@pytest.mark.parametrize("driver", BOTH, ids=ids)
def test_a_connection_not_up_by_the_deadline_is_connect_failed(driver: Driver) -> None:
    # A listener whose accept queue is full: Linux drops the SYN, the connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(8):
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(address)
            except TimeoutError:
                probe.close()
                break
            fillers.append(probe)
        else:
            pytest.skip("this system does not leave a connect to a full accept queue pending")
        outcome, elapsed = driver.send(Request("HEAD", f"http://{address[0]}:{address[1]}/"),
                                       quick())  # fmt: skip
    finally:
        for sock in (*fillers, listener):
            sock.close()
    assert isinstance(outcome, ConnectFailedError), outcome
    assert outcome.outcome is Outcome.NOT_DELIVERED
    assert "could not connect within the exchange deadline (0.5 s)" in str(outcome)
    assert elapsed < 4.0  # the connect timeout is 5 s


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
