"""The body path of the uploader's own clients: the file's bytes go out without a copy through
Python (``os.sendfile`` on plain HTTP, one reused buffer under TLS), exactly, on real sockets.

Against the reference tus server (plain and behind Node's ``https`` with a trustme CA), and
against a bare listening socket for what a server cannot show: a file shorter than its block,
a stand-in that reached the socket altered.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import trustme

from steadypost import AsyncUploader, Uploader
from steadypost.drivers import blocks, socket_deadline
from steadypost.drivers.files import OpenedFile, snapshot_file
from steadypost.drivers.http import _CURRENT, Deadline
from steadypost.errors import FileProblemError
from steadypost.flow import Request
from steadypost.models import Timeouts
from tusd import TusServer

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable set the uploader makes a plain httpx client: not under test here."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


class Spy:
    """Counts the calls (and bytes) of the real function it wraps."""

    def __init__(self, real: Callable[..., Any], measure: Callable[[Any], int]) -> None:
        self.real, self.measure = real, measure
        self.calls, self.total = 0, 0

    def __call__(self, *args: Any) -> Any:
        result = self.real(*args)
        self.calls += 1
        self.total += self.measure(result)
        return result


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Every ``OpenedFile.read``: a block read into a new ``bytes``."""
    spy = Spy(OpenedFile.read, len)
    monkeypatch.setattr(OpenedFile, "read", lambda self, n, pos: spy(self, n, pos))
    return spy


@pytest.fixture
def sendfile(monkeypatch: pytest.MonkeyPatch) -> Spy:
    spy = Spy(os.sendfile, int)
    monkeypatch.setattr(os, "sendfile", spy)
    return spy


@pytest.fixture
def tls_server(
    make_tus_server: Callable[..., TusServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TusServer:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    paths = [tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem")]
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.cert_chain_pems[0].write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    monkeypatch.setenv("SSL_CERT_FILE", str(paths[0]))
    server = make_tus_server(tls_cert=paths[1], tls_key=paths[2])
    assert server.endpoint.startswith("https://")
    return server


def test_h11_hands_body_bytes_to_the_socket_unchanged() -> None:
    # The fast path rests on it; with an h11 that copied, bodies would be read into bytes.
    assert blocks.STAND_INS_PASS


def test_plain_http_sends_the_file_by_sendfile_exactly(
    tus_server: TusServer, tmp_path: Path, sendfile: Spy, reads: Spy
) -> None:
    size = 3 * MiB + 12345  # several blocks, chunks of 1 MiB, a short last block
    digest = random_file(tmp_path / "v.mp4", size)
    with Uploader(chunk_size=MiB) as up:
        result = up.upload(tmp_path / "v.mp4", tus_server.endpoint)
    assert result.sha256 == tus_server.sha256(str(result.upload_url)) == digest
    assert sendfile.total == size  # every byte of the file went by sendfile...
    assert reads.calls == 0  # ...and none through a bytes object


def test_https_sends_from_one_reused_buffer_exactly(
    tls_server: TusServer, tmp_path: Path, sendfile: Spy, reads: Spy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    buffers: set[int] = set()
    fill = socket_deadline._Stream._fill

    def filled(stream: Any, block: Any) -> memoryview:
        view = fill(stream, block)
        buffers.add(id(view.obj))
        return view

    monkeypatch.setattr(socket_deadline._Stream, "_fill", filled)
    size = 2 * MiB + 7
    digest = random_file(tmp_path / "v.mp4", size)
    with Uploader(chunk_size=MiB) as up:
        result = up.upload(tmp_path / "v.mp4", tls_server.endpoint)
    assert result.sha256 == tls_server.sha256(str(result.upload_url)) == digest
    assert sendfile.calls == 0  # no sendfile under TLS: the bytes must be encrypted
    assert reads.calls == 0
    assert len(buffers) == 1  # one connection, one buffer for all 5 blocks


async def test_async_plain_http_sends_the_file_by_sendfile_exactly(
    tus_server: TusServer, tmp_path: Path, sendfile: Spy, reads: Spy
) -> None:
    size = 3 * MiB + 12345
    digest = random_file(tmp_path / "v.mp4", size)
    async with AsyncUploader(chunk_size=MiB) as up:
        result = await up.upload(tmp_path / "v.mp4", tus_server.endpoint)
    assert result.sha256 == tus_server.sha256(str(result.upload_url)) == digest
    assert (sendfile.total, reads.calls) == (size, 0)


async def test_async_https_reads_blocks_into_bytes_exactly(
    tls_server: TusServer, tmp_path: Path, sendfile: Spy, reads: Spy
) -> None:
    size = MiB + 1
    digest = random_file(tmp_path / "v.mp4", size)
    async with AsyncUploader() as up:
        result = await up.upload(tmp_path / "v.mp4", tls_server.endpoint)
    assert tls_server.sha256(str(result.upload_url)) == digest
    assert (sendfile.calls, reads.total) == (0, size)


def test_a_client_passed_in_reads_blocks_into_bytes_exactly(
    tus_server: TusServer, tmp_path: Path, sendfile: Spy, reads: Spy
) -> None:
    size = MiB + 1
    digest = random_file(tmp_path / "v.mp4", size)
    with httpx.Client() as client, Uploader(client=client) as up:
        result = up.upload(tmp_path / "v.mp4", tus_server.endpoint)
    assert tus_server.sha256(str(result.upload_url)) == digest
    assert (sendfile.calls, reads.total) == (0, size)


# ------------------------------------------------------------------ one stream, one socket


@pytest.fixture
def stream() -> Iterator[tuple[Any, socket.socket]]:
    """The uploader's sync stream to a bare listener, under a 5 s exchange deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ours = socket_deadline._Backend().connect_tcp("127.0.0.1", listener.getsockname()[1], 5.0)
    theirs, _ = listener.accept()
    theirs.settimeout(0.3)
    deadline = Deadline(Timeouts(exchange=5.0), Request("PATCH", "http://127.0.0.1/x"))
    token = _CURRENT.set(deadline)
    try:
        ours.write(b"PATCH /x HTTP/1.1\r\n\r\n", timeout=5.0)  # the head: the stream offers
        assert deadline.sink is ours
        assert theirs.recv(100).startswith(b"PATCH")
        yield ours, theirs
    finally:
        _CURRENT.reset(token)
        ours.close()
        theirs.close()
        listener.close()


def opened(tmp_path: Path, data: bytes) -> OpenedFile:
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return OpenedFile(str(path), snapshot_file(path).identity)


def received(sock: socket.socket, want: int) -> bytes:
    got = b""
    try:
        while len(got) < want and (part := sock.recv(want - len(got))):
            got += part
    except TimeoutError:
        pass
    return got


@pytest.mark.parametrize("by", ["sendfile", "buffer"])
def test_a_block_is_the_file_bytes_at_its_position(
    stream: tuple[Any, socket.socket], tmp_path: Path, by: str
) -> None:
    ours, theirs = stream
    ours._sendfile = by == "sendfile"
    data = os.urandom(300_000)
    file = opened(tmp_path, data)
    stand_in = ours.file_block(file, 1000, 200_000)
    assert stand_in == bytes(200_000)  # zeros: never filled, never sent
    ours.write(stand_in, timeout=5.0)
    assert received(theirs, 200_000) == data[1000:201_000]
    file.release()


@pytest.mark.parametrize("by", ["sendfile", "buffer"])
def test_a_file_shorter_than_its_block_is_a_file_problem(
    stream: tuple[Any, socket.socket], tmp_path: Path, by: str
) -> None:
    ours, theirs = stream
    ours._sendfile = by == "sendfile"
    file = opened(tmp_path, b"v" * 1000)
    stand_in = ours.file_block(file, 0, 5000)  # the file was cut after its check
    with pytest.raises(FileProblemError, match="became shorter"):
        ours.write(stand_in, timeout=5.0)
    # sendfile sent what the file had; the buffer is filled before anything is sent.
    assert received(theirs, 5000) == (b"v" * 1000 if by == "sendfile" else b"")
    file.release()


def test_a_stand_in_that_reached_the_socket_altered_is_refused_unsent(
    stream: tuple[Any, socket.socket], tmp_path: Path
) -> None:
    ours, theirs = stream
    file = opened(tmp_path, b"v" * 4096)
    stand_in = ours.file_block(file, 0, 4096)
    with pytest.raises(httpcore.LocalProtocolError, match="altered"):
        ours.write(bytes(bytearray(stand_in)), timeout=5.0)  # a copy, as a joining h11 makes
    assert received(theirs, 4096) == b""
    file.release()


def test_sendfile_waits_for_the_socket_within_the_deadline(tmp_path: Path) -> None:
    # A peer that reads nothing: sendfile fills the socket buffers, then waits; the wait
    # ends at the exchange deadline (0.3 s), not the write timeout (10 s).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ours = socket_deadline._Backend().connect_tcp("127.0.0.1", listener.getsockname()[1], 5.0)
    theirs, _ = listener.accept()
    file = opened(tmp_path, bytes(32 * MiB))
    deadline = Deadline(Timeouts(exchange=0.3, min_rate=1e12), Request("PATCH", "http://x/"))
    token = _CURRENT.set(deadline)
    try:
        ours.write(b"PATCH / HTTP/1.1\r\n\r\n", timeout=10.0)
        start = time.monotonic()
        with pytest.raises(httpcore.WriteTimeout):
            ours.write(ours.file_block(file, 0, 32 * MiB), timeout=10.0)
        assert time.monotonic() - start < 3.0
        assert deadline.hit
    finally:
        _CURRENT.reset(token)
        file.release()
        for s in (theirs, listener):
            s.close()
        ours.close()
