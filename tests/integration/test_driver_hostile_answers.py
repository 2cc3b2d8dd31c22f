"""Whatever the server sends, only SteadypostError leaves the drivers; uploads get through.

An answer cut anywhere, a reset, and garbage in every part of an answer (status line,
headers, framing, encoding), through both HTTP layers and both kinds of client; then
``Uploader.upload`` and ``AsyncUploader.upload`` end to end through a hostile wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from socket_drivers import (
    ALL,
    BODY,
    BODY_HEAD,
    Driver,
    MiB,
    ids,
    lost,
    no_proxies,  # noqa: F401 (autouse: importing it applies it)
    quick,
    serve,
)
from steadypost import AsyncUploader, Journal, RetryPolicy, Uploader
from steadypost.flow import Request
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


def test_a_file_smaller_than_a_chunk_is_sent_at_most_three_times(tmp_path: Path) -> None:
    """The wire bound is 2 x the file + one chunk, and a chunk is never more than the file.

    Found by benchmarks/hostile.py (head-creeps): with the default 64 MiB chunks the bound
    of a 4 MiB file was 72 MiB, and a server that keeps one byte per 500 got 8 copies.
    """
    size = 300_000
    path = tmp_path / "clip.mp4"
    path.write_bytes(hashlib.sha256(b"small").digest() * (size // 32) + b"x" * (size % 32))
    policy = RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=20)
    with HostileServer("head-creeps") as server, Uploader(
        retry=policy, timeouts=quick(), journal=Journal(tmp_path / "j.sqlite3")
    ) as up:  # fmt: skip
        post = up.post(path, server.endpoint)
        received = server.body_bytes
    assert received <= 3 * size, received
    assert "bound" in (post.last_error or ""), post.last_error


def test_an_unreadable_tus_max_size_is_ignored_not_a_failed_post(tmp_path: Path) -> None:
    """``Tus-Max-Size: ²`` in OPTIONS is advice gone wrong; the upload goes on (and is logged)."""
    data = hashlib.sha256(b"max-size").digest() * 5000
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with HostileServer("max-size-garbage") as server, Uploader(
        timeouts=quick(), journal=Journal(tmp_path / "j.sqlite3")
    ) as up:  # fmt: skip
        post = up.post(path, server.endpoint)
        stored = server.stored()
    assert post.state.value == "confirmed", post.last_error
    assert stored == data
