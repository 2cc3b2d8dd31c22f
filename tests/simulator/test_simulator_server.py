"""The simulator on a real socket: tuspy as a peer, and faults acted out on TCP."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    ResetMidChunk,
    Respond,
    SimulatorServer,
)

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
TIMEOUT = httpx.Timeout(1.5)




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # at FakeClock.DEFAULT_START: the dates below are written for it


@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock)


@pytest.fixture
def server(sim: PlatformSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim) as server:
        yield server


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


def _create(client: httpx.Client, length: int) -> str:
    response = client.post("/files", headers={**TUS, "Upload-Length": str(length)})
    assert response.status_code == 201
    return response.headers["location"]


def _offset(client: httpx.Client, url: str) -> int:
    return int(client.head(url, headers=TUS).headers["upload-offset"])


# --- tuspy as an independent client -------------------------------------------------------------


def test_tuspy_uploads_with_checksums(sim: PlatformSimulator, server: SimulatorServer) -> None:
    data = os.urandom(300_000)
    uploader = tus_client.TusClient(server.url + "/files").uploader(
        file_stream=io.BytesIO(data), chunk_size=64 * 1024,
        metadata={"filename": "clip.mp4"}, upload_checksum=True,
    )
    uploader.upload()

    upload_id = str(uploader.url).rsplit("/", 1)[1]
    assert sim.upload_bytes(upload_id) == data
    assert sim.uploads[upload_id].metadata["filename"] == "clip.mp4"
    patches = [r for r in sim.requests if r.method == "PATCH"]
    assert len(patches) == 5
    assert all(r.headers["upload-checksum"].startswith("sha1 ") for r in patches)


def test_tuspy_resumes_after_a_reset_mid_chunk(
    sim: PlatformSimulator, server: SimulatorServer
) -> None:
    data = os.urandom(200_000)
    sim.faults.add(ResetMidChunk(after_bytes=70_000))
    first = tus_client.TusClient(server.url + "/files").uploader(
        file_stream=io.BytesIO(data), chunk_size=len(data))
    with pytest.raises(Exception, match=r"(?i)connection|reset|abort"):
        first.upload()

    # A new uploader on the same URL asks the server (HEAD) and sends only the rest.
    second = tus_client.TusClient(server.url + "/files").uploader(
        file_stream=io.BytesIO(data), url=first.url, chunk_size=len(data))
    assert second.offset == 70_000
    second.upload()
    assert sim.upload_bytes(str(first.url).rsplit("/", 1)[1]) == data
    assert [r.body_bytes for r in sim.requests if r.method == "PATCH"] == [70_000, 130_000]


def test_tuspy_against_a_relative_location(clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, location="relative")
    with SimulatorServer(sim) as server:
        uploader = tus_client.TusClient(server.url + "/files/").uploader(
            file_stream=io.BytesIO(b"hello"), chunk_size=2)
        uploader.upload()
    assert str(uploader.url).startswith(server.url + "/files/")
    assert next(iter(sim.uploads.values())).completed


def test_tuspy_sees_the_503_of_an_outage(
    sim: PlatformSimulator, clock: FakeClock, server: SimulatorServer
) -> None:
    sim.faults.add(Outage(clock.now(), clock.now() + 60, retry_after=60))
    with pytest.raises(TusCommunicationError):
        tus_client.TusClient(server.url + "/files").uploader(
            file_stream=io.BytesIO(b"x"), chunk_size=1).upload()
    assert sim.uploads == {}


# --- HTTP details -------------------------------------------------------------------------------


def test_streamed_chunked_body(sim: PlatformSimulator, client: httpx.Client) -> None:
    data = os.urandom(150_000)
    url = _create(client, len(data))

    def blocks() -> Iterator[bytes]:
        for start in range(0, len(data), 10_000):
            yield data[start : start + 10_000]

    response = client.patch(url, content=blocks(), headers={**TUS, **OCTET, "Upload-Offset": "0"})
    assert response.status_code == 204
    assert sim.requests[-1].headers["transfer-encoding"] == "chunked"
    assert sim.upload_bytes(url.rsplit("/", 1)[1]) == data


def test_keep_alive_and_fake_clock_dates(clock: FakeClock, server: SimulatorServer) -> None:
    clock.advance(3600)
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.5) as sock:
        request = b"OPTIONS /files HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request + request)  # two requests on one connection
        received = b""
        while received.count(b"HTTP/1.1 204") < 2:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    assert b"Date: Tue, 14 Nov 2023 23:13:20 GMT" in received


def test_reason_phrase_for_460(client: httpx.Client) -> None:
    url = _create(client, 1)
    response = client.patch(url, content=b"x", headers={
        **TUS, **OCTET, "Upload-Offset": "0", "Upload-Checksum": "sha1 AAAA"})
    assert (response.status_code, response.reason_phrase) == (460, "Checksum Mismatch")


# --- faults on the wire --------------------------------------------------------------------------


def test_refusing_outage_closes_the_port_then_reopens_it(
    sim: PlatformSimulator, clock: FakeClock, server: SimulatorServer, client: httpx.Client
) -> None:
    assert client.options("/files").status_code == 204  # a keep-alive connection is now idle
    sim.faults.add(Outage(clock.now() + 10, clock.now() + 70, mode="refuse"))
    assert server.listening

    clock.advance(10)
    assert not server.listening
    # The pooled idle connection was cut: reusing it fails as a reset if the client did not
    # see the close first, as a refused reconnect if it did. A new connection is refused.
    with pytest.raises((httpx.ConnectError, httpx.ReadError)):
        client.options("/files")
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as fresh:
        with pytest.raises(httpx.ConnectError):
            fresh.options("/files")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1.5)

    clock.advance(60)
    assert server.listening
    assert client.options("/files").status_code == 204


def test_refusing_outage_limited_to_a_path_resets_connections(
    sim: PlatformSimulator, clock: FakeClock, server: SimulatorServer, client: httpx.Client
) -> None:
    sim.faults.add(Outage(clock.now(), clock.now() + 60, mode="refuse", path="/posts"))
    assert server.listening
    assert client.options("/files").status_code == 204
    with pytest.raises(httpx.TransportError):
        client.get("/posts/x/status")
    assert sim.requests[-1].broken == "refuse"


def test_reset_mid_chunk_is_a_tcp_reset(sim: PlatformSimulator, server: SimulatorServer,
                                        client: httpx.Client) -> None:
    url = _create(client, 1_000_000)
    sim.faults.add(ResetMidChunk(after_bytes=100_000))
    path = url.removeprefix(server.url)
    head = (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            "Content-Type: application/offset+octet-stream\r\nContent-Length: 1000000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.5) as sock:
        sock.sendall(head.encode())
        with pytest.raises(ConnectionResetError):  # noqa: PT012 (the reset lands mid-send)
            for _ in range(100):
                sock.sendall(b"v" * 10_000)
            sock.recv(1)
    assert _offset(client, url) == 100_000


def test_reset_mid_chunk_with_httpx(sim: PlatformSimulator, client: httpx.Client) -> None:
    url = _create(client, 500_000)
    sim.faults.add(ResetMidChunk(after_bytes=1_000))
    with pytest.raises((httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        client.patch(url, content=b"v" * 500_000,
                     headers={**TUS, **OCTET, "Upload-Offset": "0"})
    assert _offset(client, url) == 1_000


def test_processed_but_timeout_holds_until_the_client_gives_up(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    sim.faults.add(ProcessedButTimeout(on={"patch"}))
    url = _create(client, 3)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.patch(url, content=b"abc", headers={**TUS, **OCTET, "Upload-Offset": "0"},
                     timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert _offset(client, url) == 3  # the work was done
    assert sim.requests[-2].broken == "timeout"


def test_processed_but_timeout_closes_after_hold_s(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    sim.faults.add(ProcessedButTimeout(on={"create"}, hold_s=0.2))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/files", headers={**TUS, "Upload-Length": "3"})
    assert len(sim.uploads) == 1


def test_processed_but_500_on_publish(sim: PlatformSimulator, client: httpx.Client) -> None:
    url = _create(client, 1)
    client.patch(url, content=b"x", headers={**TUS, **OCTET, "Upload-Offset": "0"})
    sim.faults.add(ProcessedButError())
    response = client.post("/posts", json={"upload_url": url}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 500
    assert sim.published_copies("k") == 1


def test_respond_429_then_success_on_the_same_connection(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    sim.faults.add(Respond(status=429, retry_after=7, methods={"PATCH"}))
    url = _create(client, 50_000)
    headers = {**TUS, **OCTET, "Upload-Offset": "0"}
    refused = client.patch(url, content=b"a" * 50_000, headers=headers)
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "7")
    assert sim.requests[-1].body_bytes == 50_000  # drained, so keep-alive still works
    assert client.patch(url, content=b"a" * 50_000, headers=headers).status_code == 204


def test_stop_is_prompt_with_a_silent_connection_open(sim: PlatformSimulator) -> None:
    sim.faults.add(ProcessedButTimeout(on={"create"}, hold_s=30))
    server = SimulatorServer(sim).start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=1.5)
    sock.sendall(b"POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                 b"Upload-Length: 1\r\nContent-Length: 0\r\n\r\n")
    deadline = time.monotonic() + 1.5
    while not sim.uploads and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    sock.close()
