"""The tus client, branch by branch, through pytest-httpx (no sockets, no real sleeping)."""

from __future__ import annotations

import base64
import email.utils
import logging
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fakes import ENDPOINT, Canned, FakeTime, ScriptedTus, seeded
from platform_support import sha
from steadypost import (
    ChecksumMismatchError,
    ConfigurationError,
    FileProblemError,
    Outcome,
    ProgressKind,
    ProtocolError,
    RetriesExhaustedError,
    RetryPolicy,
    StatusError,
    Timeouts,
    Uploader,
    UploadGoneError,
)

KiB = 1024


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    return path


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


def make_uploader(ft: FakeTime, **kw: object) -> Uploader:
    kw.setdefault("chunk_size", 4 * KiB)
    return Uploader(sleep=ft.sleep, clock=ft.clock, rng=seeded(), **kw)  # type: ignore[arg-type]


def serve(httpx_mock: HTTPXMock, **kw: object) -> ScriptedTus:
    tus = ScriptedTus(**kw)  # type: ignore[arg-type]
    httpx_mock.add_callback(tus, is_reusable=True)
    return tus



def test_full_upload_in_chunks(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    progress = []
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT, metadata={"caption": "hi"}, on_progress=progress.append)
    assert tus.methods() == ["OPTIONS", "POST", "PATCH", "PATCH", "PATCH"]
    assert tus.sha256(result.upload_url) == sha(video) == result.sha256
    assert result.offset == result.size == 10_240
    post = tus.requests[1]
    assert post.headers["Upload-Length"] == "10240"
    meta = dict(p.split(" ") for p in post.headers["Upload-Metadata"].split(","))
    assert base64.b64decode(meta["filename"]) == b"clip.mp4"
    assert base64.b64decode(meta["filetype"]) == b"video/mp4"
    assert base64.b64decode(meta["caption"]) == b"hi"
    patch = tus.requests[2]
    assert patch.headers["Content-Type"] == "application/offset+octet-stream"
    assert patch.headers["Content-Length"] == str(4 * KiB)
    assert "Transfer-Encoding" not in patch.headers
    assert all(r.headers["Tus-Resumable"] == "1.0.0" for r in tus.requests)
    acked = [p.acknowledged for p in progress if p.kind is ProgressKind.BYTES]
    assert acked[-1] == 10_240
    assert acked == sorted(acked)
    assert ft.sleeps == []


def test_every_request_has_all_four_timeouts(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    timeouts = Timeouts(connect=1.5, read=2.5, write=3.5, pool=4.5)
    with make_uploader(ft, timeouts=timeouts) as up:
        up.upload(video, ENDPOINT)
    for request in tus.requests:
        assert request.extensions["timeout"] == {
            "connect": 1.5,
            "read": 2.5,
            "write": 3.5,
            "pool": 4.5,
        }


def test_options_are_cached_per_endpoint(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    with make_uploader(ft) as up:
        up.upload(video, ENDPOINT)
        up.upload(video, ENDPOINT)
    assert tus.methods().count("OPTIONS") == 1


def test_creation_with_upload_when_advertised(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock, extensions="creation,creation-with-upload")
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    # The first chunk rides on the POST; the rest follows in PATCHes.
    assert tus.methods() == ["OPTIONS", "POST", "PATCH", "PATCH"]
    assert len(tus.requests[1].content) == 4 * KiB
    assert tus.requests[2].headers["Upload-Offset"] == str(4 * KiB)
    assert tus.sha256(result.upload_url) == sha(video)


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_files(httpx_mock: HTTPXMock, tmp_path: Path, ft: FakeTime, size: int) -> None:
    path = tmp_path / "tiny.webm"
    path.write_bytes(b"x" * size)
    tus = serve(httpx_mock)
    with make_uploader(ft) as up:
        result = up.upload(path, ENDPOINT)
    assert result.offset == size
    assert tus.uploads[result.upload_url] == b"x" * size
    assert tus.methods().count("PATCH") == size


def test_relative_location_is_resolved(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("POST", Canned(201, {"Location": "/files/abc", "Tus-Resumable": "1.0.0"}))
    tus.uploads["https://up.example.com/files/abc"] = bytearray()
    tus.lengths["https://up.example.com/files/abc"] = 10_240
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    assert result.upload_url == "https://up.example.com/files/abc"
    assert str(tus.requests[2].url) == "https://up.example.com/files/abc"


def test_503_with_retry_after_seconds_waits_then_heads(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(503, {"Retry-After": "42"}))
    waits = []
    with make_uploader(ft) as up:
        up.upload(video, ENDPOINT, on_progress=lambda p: waits.append(p) if p.wait_s else None)
    assert tus.methods() == ["OPTIONS", "POST", "PATCH", "HEAD", "PATCH", "PATCH", "PATCH"]
    assert len(ft.sleeps) == 1
    assert ft.sleeps[0] >= 42
    assert waits[0].message == f"server busy (503), retrying in {ft.sleeps[0]:.0f} s"


def test_retry_after_http_date(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    when = email.utils.formatdate(ft.now + 120, usegmt=True)
    tus.queue("PATCH", Canned(429, {"Retry-After": when}))
    with make_uploader(ft) as up:
        up.upload(video, ENDPOINT)
    assert 120 <= ft.sleeps[0] <= 121


def test_retry_after_is_capped(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(503, {"Retry-After": "999999"}))
    policy = RetryPolicy(retry_after_cap_s=600, deadline_s=None)
    with make_uploader(ft, retry=policy) as up:
        up.upload(video, ENDPOINT)
    assert ft.sleeps == [600]


@pytest.mark.parametrize("status", [408, 423, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(httpx_mock: HTTPXMock, video: Path, ft: FakeTime, status: int) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(status))
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    assert len(ft.sleeps) == 1
    assert tus.sha256(result.upload_url) == sha(video)


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415])
def test_other_4xx_are_rejected_without_retry(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime, status: int
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(status, content=b"<html><body>nope</body></html>"))
    with make_uploader(ft) as up, pytest.raises(StatusError) as info:
        up.upload(video, ENDPOINT)
    assert info.value.status == status
    assert info.value.outcome is Outcome.REJECTED
    assert "<html" not in str(info.value)
    assert ft.sleeps == []


def test_connection_reset_mid_chunk_resumes_from_server_offset(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(keep_body=1000, error=httpx.ReadError("reset")))
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert patches[1].headers["Upload-Offset"] == "1000"  # not 0: the server kept 1000 bytes
    assert tus.sha256(result.upload_url) == sha(video)


def test_connect_error_is_retried_once_the_endpoint_has_answered(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("OPTIONS", Canned(error=httpx.ConnectError("refused")))
    with make_uploader(ft) as up:
        up.hosts.guard().mark_answered(ENDPOINT, ft.now)  # it answered like tus before
        up.upload(video, ENDPOINT)
    assert len(ft.sleeps) == 1


@pytest.mark.parametrize(
    "answer",
    [
        Canned(error=httpx.ConnectError("refused")),
        Canned(error=httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")),
        Canned(501, {"Content-Type": "text/html"}, b"<html>Not Implemented</html>"),
        Canned(404, {}, b"<!DOCTYPE html><html>nginx</html>"),
        Canned(200, {"Content-Type": "text/html"}, b"<html>Welcome to nginx</html>"),
    ],
    ids=["refused", "tls-to-http", "501", "404-html", "200-html"],
)
def test_a_new_endpoint_that_does_not_answer_like_tus_is_a_configuration_error(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime, answer: Canned
) -> None:
    tus = serve(httpx_mock)
    tus.queue("OPTIONS", answer)
    with make_uploader(ft) as up:
        with pytest.raises(ConfigurationError, match="tus server"):
            up.upload(video, ENDPOINT)
        assert up.hosts.state(ENDPOINT).failures == 0  # no breaker state: not an outage
    assert ft.sleeps == []
    assert tus.methods() == ["OPTIONS"]


def test_409_waits_then_heads_then_continues(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(409))
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    assert tus.methods()[2:5] == ["PATCH", "HEAD", "PATCH"]
    # A 409 moved nothing: a wait (at least the policy's floor) comes before the HEAD.
    assert len(ft.sleeps) == 1
    assert ft.sleeps[0] >= RetryPolicy().floor_s
    assert tus.sha256(result.upload_url) == sha(video)


def test_endless_409_is_a_protocol_error(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", *[Canned(409) for _ in range(10)])
    with make_uploader(ft) as up, pytest.raises(ProtocolError, match="409"):
        up.upload(video, ENDPOINT)


def test_checksum_uses_strongest_and_460_resends(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock, extensions="creation,checksum", checksum_algorithms="md5,sha1,sha256")
    tus.queue("PATCH", Canned(460))
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert all(p.headers["Upload-Checksum"].startswith("sha256 ") for p in patches)
    assert patches[0].headers["Upload-Offset"] == patches[1].headers["Upload-Offset"] == "0"
    assert tus.sha256(result.upload_url) == sha(video)


def test_checksum_falls_back_to_sha1(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock, extensions="creation,checksum", checksum_algorithms="md5, sha1")
    with make_uploader(ft) as up:
        up.upload(video, ENDPOINT)
    assert tus.requests[2].headers["Upload-Checksum"].startswith("sha1 ")


def test_repeated_460_is_bounded(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock, extensions="creation,checksum", checksum_algorithms="sha256")
    tus.queue("PATCH", *[Canned(460) for _ in range(10)])
    with make_uploader(ft, retry=RetryPolicy(checksum_retries=2)) as up:
        with pytest.raises(ChecksumMismatchError):
            up.upload(video, ENDPOINT)
    assert tus.methods().count("PATCH") == 3


@pytest.mark.parametrize("status", [404, 410])
def test_resume_of_a_vanished_upload_starts_over(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime, status: int
) -> None:
    tus = serve(httpx_mock)
    tus.queue("HEAD", Canned(status))
    with make_uploader(ft) as up:
        result = up.resume(ENDPOINT + "old", video, endpoint=ENDPOINT)
    assert tus.methods()[:3] == ["OPTIONS", "HEAD", "POST"]
    assert result.upload_url != ENDPOINT + "old"
    assert tus.sha256(result.upload_url) == sha(video)


def test_410_on_patch_starts_over(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(204, {"Upload-Offset": "4096"}), Canned(410))
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    assert tus.methods().count("POST") == 2
    assert result.upload_url.endswith("u2")


def test_expired_upload_is_not_resumed(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    expired = email.utils.formatdate(ft.now - 1, usegmt=True)
    tus.queue("POST", Canned(201, {"Location": ENDPOINT + "u9", "Upload-Expires": expired}))
    tus.uploads[ENDPOINT + "u9"] = bytearray()
    tus.lengths[ENDPOINT + "u9"] = 10_240
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    # The first upload had already expired: no PATCH was sent into it.
    assert next(str(r.url) for r in tus.requests if r.method == "PATCH") == result.upload_url
    assert result.upload_url != ENDPOINT + "u9"


def test_resume_continues_from_head_offset(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    url = ENDPOINT + "begun"
    tus.uploads[url] = bytearray(video.read_bytes()[:5000])
    tus.lengths[url] = 10_240
    with make_uploader(ft) as up:
        result = up.resume(url, video, endpoint=ENDPOINT)
    assert tus.methods() == ["OPTIONS", "HEAD", "PATCH", "PATCH"]
    assert tus.requests[2].headers["Upload-Offset"] == "5000"
    assert result.bytes_sent == 10_240 - 5000
    assert tus.sha256(url) == sha(video)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({"Upload-Offset": "99999", "Upload-Length": "10240"}, "beyond the file size"),
        ({"Upload-Length": "10240"}, "no Upload-Offset header"),
        ({"Upload-Offset": "abc", "Upload-Length": "10240"}, "not a number"),
        ({"Upload-Offset": "10", "Upload-Length": "777"}, "belongs to another file"),
    ],
)
def test_nonsense_head_answers(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime, headers: dict[str, str], match: str
) -> None:
    tus = serve(httpx_mock)
    tus.queue("HEAD", Canned(200, headers))
    with make_uploader(ft) as up, pytest.raises(ProtocolError, match=match):
        up.resume(ENDPOINT + "x", video, endpoint=ENDPOINT)


def test_offset_going_backwards_is_a_protocol_error(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue(
        "PATCH",
        Canned(204, {"Upload-Offset": "4096"}),
        Canned(503),
    )
    tus.queue("HEAD", Canned(200, {"Upload-Offset": "100", "Upload-Length": "10240"}))
    with make_uploader(ft) as up, pytest.raises(ProtocolError, match="backwards"):
        up.upload(video, ENDPOINT)


def test_patch_offset_beyond_what_was_sent(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(204, {"Upload-Offset": "9000"}))
    with (
        make_uploader(ft) as up,
        pytest.raises(ProtocolError, match="only 4096 bytes were ever sent"),
    ):
        up.upload(video, ENDPOINT)


def test_post_without_location(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("POST", Canned(201, content=b"<html>ok</html>"))
    with make_uploader(ft) as up, pytest.raises(ProtocolError, match="Location"):
        up.upload(video, ENDPOINT)


def test_credentials_do_not_leak_to_another_origin(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock, location_base="https://storage.other.net/files/")
    with make_uploader(ft, headers={"Authorization": "Bearer s3cret"}) as up:
        up.upload(video, ENDPOINT)
    by_host = {(r.method, r.url.host): r for r in tus.requests}
    assert by_host[("POST", "up.example.com")].headers["Authorization"] == "Bearer s3cret"
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert patches
    assert all("Authorization" not in r.headers for r in patches)


def test_credentials_go_to_an_allowed_origin(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock, location_base="https://storage.other.net/files/")
    up = make_uploader(
        ft,
        headers={"Authorization": "Bearer s3cret"},
        allowed_origins={"https://storage.other.net"},
    )
    with up:
        up.upload(video, ENDPOINT)
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in patches)


def test_retries_are_bounded_and_say_not_delivered(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    tus.queue("OPTIONS", *[Canned(503) for _ in range(10)])
    with make_uploader(ft, retry=RetryPolicy(max_attempts=4, deadline_s=None)) as up:
        with pytest.raises(RetriesExhaustedError) as info:
            up.upload(video, ENDPOINT)
    assert info.value.attempts == 4
    assert len(ft.sleeps) == 3
    assert info.value.outcome is Outcome.NOT_DELIVERED  # a 503 says: not processed
    assert isinstance(info.value.__cause__, StatusError)


def test_deadline_stops_retrying(httpx_mock: HTTPXMock, video: Path, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", *[Canned(503, {"Retry-After": "100"}) for _ in range(20)])
    with make_uploader(ft, retry=RetryPolicy(deadline_s=350, max_attempts=50)) as up:
        with pytest.raises(RetriesExhaustedError):
            up.upload(video, ENDPOINT)
    assert sum(ft.sleeps) <= 350


def test_attempt_counter_resets_when_offset_advances(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    original = tus._patch
    calls = {"n": 0}

    def two_failures_before_each_chunk(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] % 3 != 0:
            return httpx.Response(503, headers={"Tus-Resumable": "1.0.0"})
        return original(request)

    tus._patch = two_failures_before_each_chunk  # type: ignore[method-assign]
    # 6 failures in all, more than max_attempts=3, but never 3 in a row without progress.
    # (Each refused PATCH carried its chunk: 3x the file goes out, past the default wire bound.)
    policy = RetryPolicy(max_attempts=3, deadline_s=None, wire_factor=4)
    with make_uploader(ft, retry=policy) as up:
        result = up.upload(video, ENDPOINT)
    assert len(ft.sleeps) == 6
    assert tus.sha256(result.upload_url) == sha(video)


def test_every_retry_is_logged_with_reason_and_wait(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    tus = serve(httpx_mock)
    tus.queue("PATCH", Canned(503, {"Retry-After": "7"}))
    caplog.set_level(logging.INFO, logger="steadypost")
    with make_uploader(ft) as up:
        up.upload(video, ENDPOINT)
    retry_lines = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert any(
        "server busy (503)" in line and f"{ft.sleeps[0]:.1f} s" in line for line in retry_lines
    )


def test_missing_and_bad_files(httpx_mock: HTTPXMock, tmp_path: Path, ft: FakeTime) -> None:
    with make_uploader(ft) as up:
        with pytest.raises(FileProblemError, match="no such file"):
            up.upload(tmp_path / "nope.mp4", ENDPOINT)
        with pytest.raises(FileProblemError, match="directory"):
            up.upload(tmp_path, ENDPOINT)


def test_file_changed_mid_upload_is_never_resumed(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    tus = serve(httpx_mock)
    original = tus._head

    def grow_file(request: httpx.Request) -> httpx.Response:
        with video.open("ab") as f:
            f.write(b"more")
        return original(request)

    tus._head = grow_file  # type: ignore[method-assign]
    tus.queue("PATCH", Canned(keep_body=4096, status=503))
    with make_uploader(ft) as up, pytest.raises(FileProblemError, match="changed"):
        up.upload(video, ENDPOINT)


def test_terminate_sends_delete(httpx_mock: HTTPXMock, ft: FakeTime) -> None:
    tus = serve(httpx_mock)
    with make_uploader(ft, headers={"Authorization": "Bearer t"}) as up:
        up.terminate(ENDPOINT + "u1", endpoint=ENDPOINT)
    assert tus.methods() == ["DELETE"]
    assert tus.requests[0].headers["Authorization"] == "Bearer t"


def test_gone_error_has_not_delivered_outcome() -> None:
    assert UploadGoneError("x").outcome is Outcome.NOT_DELIVERED


def test_upload_expires_is_read_on_the_servers_clock(
    httpx_mock: HTTPXMock, video: Path, ft: FakeTime
) -> None:
    """A server whose clock is a day behind ours: its upload still has an hour left."""
    tus = serve(httpx_mock)
    server_now = ft.now - 86_400
    headers = {
        "Location": ENDPOINT + "u9",
        "Date": email.utils.formatdate(server_now, usegmt=True),
        "Upload-Expires": email.utils.formatdate(server_now + 3600, usegmt=True),
    }
    tus.queue("POST", Canned(201, headers))
    tus.uploads[ENDPOINT + "u9"] = bytearray()
    tus.lengths[ENDPOINT + "u9"] = 10_240
    with make_uploader(ft) as up:
        result = up.upload(video, ENDPOINT)
    assert result.upload_url == ENDPOINT + "u9"  # resumed into, not abandoned as expired
    assert tus.methods().count("POST") == 1
