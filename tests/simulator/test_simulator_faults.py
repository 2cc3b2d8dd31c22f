"""Every fault rule, through the in-process transport (sync and async)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from steadypost.testing import (
    HTML_ERROR_PAGE,
    BadUploadOffset,
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    ResetMidChunk,
    Respond,
    http_date,
)

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
BASE = "https://platform.test"




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # at FakeClock.DEFAULT_START: the dates below are written for it


@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock)


@pytest.fixture
def client(sim: PlatformSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sim.transport(), base_url=BASE) as client:
        yield client


def _create(client: httpx.Client, length: int) -> str:
    response = client.post("/files", headers={**TUS, "Upload-Length": str(length)})
    assert response.status_code == 201
    return response.headers["location"]


def _patch(client: httpx.Client, url: str, offset: int, content: object,
           **headers: str) -> httpx.Response:
    return client.patch(url, content=content,  # type: ignore[arg-type]
                        headers={**TUS, **OCTET, "Upload-Offset": str(offset), **headers})


def _offset(client: httpx.Client, url: str) -> int:
    return int(client.head(url, headers=TUS).headers["upload-offset"])


def _blocks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# --- Outage ---------------------------------------------------------------------------------


def test_outage_503_with_retry_after_seconds(
    sim: PlatformSimulator, clock: FakeClock, client: httpx.Client
) -> None:
    start = clock.now() + 60
    sim.faults.add(Outage(start, start + 600, retry_after=120))
    url = _create(client, 3)

    clock.advance(60)
    for request in (client.build_request("HEAD", url, headers=TUS),
                    client.build_request("OPTIONS", "/files"),
                    client.build_request("GET", "/posts/x/status")):
        response = client.send(request)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "120"
    assert _patch(client, url, 0, b"abc").status_code == 503

    clock.advance(600)
    assert _patch(client, url, 0, b"abc").status_code == 204
    assert sim.requests[-2].fault == "Outage"


def test_outage_retry_after_as_http_date(
    sim: PlatformSimulator, clock: FakeClock, client: httpx.Client
) -> None:
    until = clock.now() + 300
    sim.faults.add(Outage(clock.now(), until, retry_after=http_date(until)))
    assert client.options("/files").headers["retry-after"] == "Tue, 14 Nov 2023 22:18:20 GMT"


def test_outage_limited_to_a_path(sim: PlatformSimulator, clock: FakeClock,
                                  client: httpx.Client) -> None:
    sim.faults.add(Outage(clock.now(), clock.now() + 60, path="/posts"))
    assert client.options("/files").status_code == 204
    assert client.get("/posts/k/status").status_code == 503


def test_refusing_outage_raises_connect_error(
    sim: PlatformSimulator, clock: FakeClock, client: httpx.Client
) -> None:
    sim.faults.add(Outage(clock.now(), clock.now() + 60, mode="refuse"))
    url = "/files/whatever"
    with pytest.raises(httpx.ConnectError):
        _patch(client, url, 0, _blocks(b"x" * 100, 10))
    assert sim.requests[-1].broken == "refuse"
    assert sim.requests[-1].body_bytes == 0

    clock.advance(60)
    assert client.options("/files").status_code == 204


# --- ResetMidChunk -------------------------------------------------------------------------------


def test_reset_mid_chunk_keeps_the_bytes_received(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    data = bytes(range(256)) * 100
    url = _create(client, len(data))
    rule = ResetMidChunk(after_bytes=10_000)
    sim.faults.add(rule)
    consumed: list[int] = []

    def streamed() -> Iterator[bytes]:
        for block in _blocks(data, 4096):
            consumed.append(len(block))
            yield block

    with pytest.raises(httpx.ReadError):
        _patch(client, url, 0, streamed())

    assert sum(consumed) == 3 * 4096  # read incrementally, stopped inside the third block
    assert _offset(client, url) == 10_000
    assert sim.faults.fired(rule) == 1
    assert _patch(client, url, 10_000, data[10_000:]).status_code == 204  # times=1: used up
    assert sim.upload_bytes(url.rsplit("/", 1)[1]) == data
    broken = [r for r in sim.requests if r.broken]
    assert [(r.fault, r.broken, r.body_bytes) for r in broken] == [
        ("ResetMidChunk", "reset", 10_000)]


def test_reset_discards_a_checksummed_chunk(sim: PlatformSimulator, client: httpx.Client) -> None:
    data = b"z" * 1000
    url = _create(client, len(data))
    sim.faults.add(ResetMidChunk(after_bytes=500))
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()
    with pytest.raises(httpx.ReadError):
        _patch(client, url, 0, data, **{"Upload-Checksum": f"sha1 {digest}"})
    assert _offset(client, url) == 0


def test_reset_after_the_whole_body_stores_everything(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    url = _create(client, 3)
    sim.faults.add(ResetMidChunk(after_bytes=1_000))
    with pytest.raises(httpx.ReadError):
        _patch(client, url, 0, b"abc")
    assert sim.uploads[url.rsplit("/", 1)[1]].completed


def test_reset_on_creation_with_upload(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(ResetMidChunk(after_bytes=2, methods={"post"}, path="/files"))
    with pytest.raises(httpx.ReadError):
        client.post("/files", content=b"abcd", headers={**TUS, **OCTET, "Upload-Length": "4"})
    (info,) = sim.uploads.values()  # created, but the client never learnt its URL
    assert info.offset == 2


# --- processed, but the answer was lost -------------------------------------------------------


def _upload(client: httpx.Client, data: bytes = b"clip") -> str:
    url = _create(client, len(data))
    assert _patch(client, url, 0, data).status_code == 204
    return url


def test_processed_but_500_on_publish(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(ProcessedButError())
    url = _upload(client)
    response = client.post("/posts", json={"upload_url": url}, headers={"Idempotency-Key": "p"})
    assert response.status_code == 500
    assert sim.published_copies("p") == 1  # live although the client heard "500"
    assert client.get("/posts/p/status").json()["status"] == "processed"


def test_processed_but_500_on_final_patch(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(ProcessedButError(status=502, on={"final_patch"}))
    url = _create(client, 6)
    assert _patch(client, url, 0, b"abc").status_code == 204  # not the final one
    assert _patch(client, url, 3, b"def").status_code == 502
    assert _offset(client, url) == 6


def test_processed_but_timeout_on_publish(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(ProcessedButTimeout())
    url = _upload(client)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/posts", json={"upload_url": url}, headers={"Idempotency-Key": "p"})
    assert sim.published_copies("p") == 1
    assert sim.requests[-1].broken == "timeout"


def test_processed_but_timeout_on_final_patch(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(ProcessedButTimeout(on={"final_patch"}))
    url = _create(client, 3)
    with pytest.raises(httpx.ReadTimeout):
        _patch(client, url, 0, b"abc")
    assert _offset(client, url) == 3


def test_errors_before_the_work_do_not_trigger_processed_rules(
    sim: PlatformSimulator, client: httpx.Client
) -> None:
    rule = ProcessedButError(on={"patch"})
    sim.faults.add(rule)
    url = _create(client, 3)
    assert _patch(client, url, 1, b"abc").status_code == 409  # nothing was done
    assert sim.faults.fired(rule) == 0
    assert _patch(client, url, 0, b"abc").status_code == 500
    assert sim.faults.fired(rule) == 1


# --- Respond -------------------------------------------------------------------------------------


def test_respond_423_twice_on_patch_only(sim: PlatformSimulator, client: httpx.Client) -> None:
    rule = Respond(status=423, times=2, methods={"PATCH"})
    sim.faults.add(rule)
    url = _create(client, 3)
    assert [_patch(client, url, 0, b"abc").status_code for _ in range(3)] == [423, 423, 204]
    assert sim.faults.fired(rule) == 2
    assert _offset(client, url) == 3


def test_respond_429_with_retry_after(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(Respond(status=429, retry_after=30.2, path="/files"))
    response = client.post("/files", headers={**TUS, "Upload-Length": "1"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "31"
    assert sim.uploads == {}


def test_respond_500(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(Respond(status=500, times=None, start=sim.clock.now(),
                           end=sim.clock.now() + 10))
    assert client.options("/files").status_code == 500
    assert client.options("/files").status_code == 500
    sim.clock.advance(10)
    assert client.options("/files").status_code == 204


def test_respond_html_instead_of_json(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(Respond(status=200, html=True, path="/posts"))
    response = client.get("/posts/p/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert response.content == HTML_ERROR_PAGE
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


def test_respond_with_custom_body_and_headers(sim: PlatformSimulator, client: httpx.Client) -> None:
    sim.faults.add(Respond(status=401, body=b"token revoked", content_type="text/plain",
                           headers=(("WWW-Authenticate", "Bearer"),)))
    response = client.options("/files")
    assert (response.status_code, response.text) == (401, "token revoked")
    assert response.headers["www-authenticate"] == "Bearer"


# --- BadUploadOffset ------------------------------------------------------------------------------


def test_missing_upload_offset(sim: PlatformSimulator, client: httpx.Client) -> None:
    url = _create(client, 6)
    sim.faults.add(BadUploadOffset(methods={"PATCH"}))
    response = _patch(client, url, 0, b"abc")
    assert response.status_code == 204
    assert "upload-offset" not in response.headers
    assert _offset(client, url) == 3  # the bytes were stored all the same


def test_upload_offset_beyond_length(sim: PlatformSimulator, client: httpx.Client) -> None:
    url = _create(client, 6)
    sim.faults.add(BadUploadOffset(report="beyond_length"))
    assert client.head(url, headers=TUS).headers["upload-offset"] == "7"


def test_upload_offset_going_backwards(sim: PlatformSimulator, client: httpx.Client) -> None:
    url = _create(client, 6)
    _patch(client, url, 0, b"abc")
    sim.faults.add(BadUploadOffset(report="backwards", times=2))
    assert _patch(client, url, 3, b"de").headers["upload-offset"] == "2"
    assert client.head(url, headers=TUS).headers["upload-offset"] == "4"
    assert _offset(client, url) == 5


# --- changing the plan at runtime ----------------------------------------------------------------


def test_faults_change_at_runtime(sim: PlatformSimulator, client: httpx.Client) -> None:
    rule = Respond(status=503, times=None)
    sim.faults.add(rule)
    assert client.options("/files").status_code == 503
    sim.faults.remove(rule)
    assert client.options("/files").status_code == 204
    sim.faults.replace([Respond(status=418)])
    assert client.options("/files").status_code == 418
    sim.faults.add(Respond(status=500))
    sim.faults.clear()
    assert client.options("/files").status_code == 204
    assert sim.faults.rules == ()


def test_outages_win_over_other_rules(sim: PlatformSimulator, clock: FakeClock,
                                      client: httpx.Client) -> None:
    sim.faults.add(Respond(status=429), Outage(clock.now(), clock.now() + 1))
    assert client.options("/files").status_code == 503
    clock.advance(1)
    assert client.options("/files").status_code == 429


# --- async ----------------------------------------------------------------------------------------


async def test_async_client_upload_reset_and_publish(clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ResetMidChunk(after_bytes=5000),
                                                 ProcessedButTimeout(on={"publish"})])
    data = b"a" * 12_000

    async def streamed(start: int) -> AsyncIterator[bytes]:
        for block in _blocks(data[start:], 2048):
            yield block

    async with httpx.AsyncClient(transport=sim.async_transport(), base_url=BASE) as client:
        created = await client.post("/files", headers={**TUS, "Upload-Length": str(len(data))})
        url = created.headers["location"]
        headers = {**TUS, **OCTET}
        with pytest.raises(httpx.ReadError):
            await client.patch(url, content=streamed(0), headers={**headers, "Upload-Offset": "0"})
        await clock.asleep(5)
        head = await client.head(url, headers=TUS)
        offset = int(head.headers["upload-offset"])
        assert offset == 5000
        response = await client.patch(url, content=streamed(offset),
                                      headers={**headers, "Upload-Offset": str(offset)})
        assert response.headers["upload-offset"] == str(len(data))
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/posts", json={"upload_url": url}, headers={"Idempotency-Key": "a"})
        status = await client.get("/posts/a/status")

    assert status.json()["status"] == "processed"
    assert sim.published_copies("a") == 1
    assert clock.sleeps == [5]


async def test_async_refusing_outage(clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, faults=[Outage(clock.now(), clock.now() + 5,
                                                        mode="refuse")])
    async with httpx.AsyncClient(transport=sim.async_transport(), base_url=BASE) as client:
        with pytest.raises(httpx.ConnectError):
            await client.options("/files")
        clock.advance(5)
        assert (await client.options("/files")).status_code == 204
