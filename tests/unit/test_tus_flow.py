"""The tus flow's branches, driven as a flow: scripted answers in, requests and waits out.

No client, no socket, no file: :func:`steadypost.testing.pump` hands every request to
:class:`Tus` (an honest in-memory tus server that a test can give canned answers) and
advances a fake clock for every wait. Each test pins one branch of
``steadypost.platforms.tus`` (the same branches ``tests/client/test_tus_unit.py`` pins
through the real uploader and pytest-httpx).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from steadypost.errors import (
    ChecksumMismatchError,
    ConnectionLostError,
    ProtocolError,
    RetriesExhaustedError,
    StatusError,
    UploadGoneError,
)
from steadypost.flow import Request, Response, RetryContext
from steadypost.flow.events import OffsetAcknowledged, UploadCreated, UploadRestarted
from steadypost.models import LocalFile
from steadypost.platforms.tus import ServerInfo, TusOptions, TusUpload
from steadypost.policy import RetryPolicy
from steadypost.testing import FakeClock, ScriptedRun, pump

ENDPOINT = "https://tus.test/files/"
DATA = bytes(range(256)) * 40  # 10,240 bytes
CHUNK = 4096
Canned = Callable[[Request, bytes], Response] | Exception


class Tus:
    """An honest tus 1.0 server in memory; ``queue`` canned answers per method."""

    def __init__(self, extensions: str = "creation,termination,expiration",
                 algorithms: str = "") -> None:  # fmt: skip
        self.extensions, self.algorithms = extensions, algorithms
        self.stored: dict[str, bytearray] = {}
        self.canned: dict[str, deque[Canned]] = {}
        self.created = 0

    def queue(self, method: str, *answers: Canned) -> None:
        self.canned.setdefault(method, deque()).extend(answers)

    def __call__(self, request: Request, body: bytes) -> Response:
        queued = self.canned.get(request.method)
        if queued:
            answer = queued.popleft()
            if isinstance(answer, Exception):
                raise answer
            return answer(request, body)
        return getattr(self, request.method.lower())(request, body)

    def options(self, request: Request, body: bytes) -> Response:
        headers = {"tus-resumable": "1.0.0", "tus-version": "1.0.0",
                   "tus-extension": self.extensions}  # fmt: skip
        if self.algorithms:
            headers["tus-checksum-algorithm"] = self.algorithms
        return Response(204, headers)

    def post(self, request: Request, body: bytes) -> Response:
        self.created += 1
        path = f"/files/u{self.created}"
        self.stored[path] = bytearray(body)
        headers = {"tus-resumable": "1.0.0", "location": path}
        if body:
            headers["upload-offset"] = str(len(body))
        return Response(201, headers)

    def head(self, request: Request, body: bytes) -> Response:
        held = self.stored.get(urlsplit(request.url).path)
        if held is None:
            return Response(404, {"tus-resumable": "1.0.0"})
        return Response(200, {"tus-resumable": "1.0.0", "upload-offset": str(len(held)),
                              "upload-length": str(len(DATA))})  # fmt: skip

    def patch(self, request: Request, body: bytes) -> Response:
        held = self.stored.get(urlsplit(request.url).path)
        if held is None:
            return Response(404, {"tus-resumable": "1.0.0"})
        if request.header("upload-offset") != str(len(held)):
            return Response(409, {"tus-resumable": "1.0.0"})
        checksum = request.header("upload-checksum")
        if checksum:
            algorithm, digest = checksum.split(" ")
            if hashlib.new(algorithm, body).digest() != base64.b64decode(digest):
                return Response(460, {"tus-resumable": "1.0.0"})
        held.extend(body)
        return Response(204, {"tus-resumable": "1.0.0", "upload-offset": str(len(held))})

    def delete(self, request: Request, body: bytes) -> Response:
        self.stored.pop(urlsplit(request.url).path, None)
        return Response(204, {"tus-resumable": "1.0.0"})


def upload(policy: RetryPolicy | None = None, clock: FakeClock | None = None,
           **kw: object) -> TusUpload:  # fmt: skip
    clock = clock or FakeClock()
    retry = RetryContext(policy=policy or RetryPolicy(), clock=clock.now, rng=random.Random(3),
                         deadline=clock.now() + 3600)  # fmt: skip
    options = TusOptions(chunk_size=CHUNK, checksum=bool(kw.pop("checksum", True)))
    return TusUpload(ENDPOINT, LocalFile("/v/clip.mp4", len(DATA), 1), options, retry,
                     **kw)  # type: ignore[arg-type]


def run(tus: Tus, flow_of: TusUpload, clock: FakeClock | None = None) -> ScriptedRun:  # type: ignore[type-arg]
    return pump(flow_of.run(), tus, data=DATA, clock=clock or FakeClock())


def methods(result: ScriptedRun) -> list[str]:  # type: ignore[type-arg]
    return [e.request.method for e in result.exchanges]


def answer(status: int, **headers: str) -> Canned:
    return lambda request, body: Response(status, {"tus-resumable": "1.0.0", **headers})


def test_an_upload_in_chunks_with_one_event_per_acknowledged_offset() -> None:
    tus = Tus()
    result = run(tus, upload())
    assert result.error is None
    assert methods(result) == ["OPTIONS", "POST", "PATCH", "PATCH", "PATCH"]
    assert bytes(tus.stored["/files/u1"]) == DATA
    acknowledged = [e.offset for e in result.events if isinstance(e, OffsetAcknowledged)]
    assert acknowledged == [0, 4096, 8192, 10240]
    assert result.sleeps == []


def test_the_upload_url_is_announced_before_any_byte_is_sent() -> None:
    result = run(Tus(), upload())
    created = next(i for i, e in enumerate(result.events) if isinstance(e, UploadCreated))
    first_body = next(i for i, e in enumerate(result.events)
                      if type(e).__name__ == "BodySending")  # fmt: skip
    assert created < first_body


def test_creation_with_upload_carries_the_first_bytes_and_is_capped() -> None:
    tus = Tus(extensions="creation,creation-with-upload")
    result = run(tus, upload())
    post = result.exchanges[1]
    assert post.request.method == "POST"
    assert len(post.body) == CHUNK  # min(chunk, 64 KiB, size)
    assert bytes(tus.stored["/files/u1"]) == DATA


def test_a_relative_location_is_resolved_against_the_endpoint() -> None:
    result = run(Tus(), upload())
    assert result.exchanges[2].request.url == "https://tus.test/files/u1"


def test_a_409_waits_then_asks_the_offset_then_goes_on() -> None:
    tus = Tus()
    tus.queue("PATCH", answer(409))
    result = run(tus, upload())
    assert methods(result)[2:5] == ["PATCH", "HEAD", "PATCH"]
    assert result.exchanges[3].waited_s >= RetryPolicy().floor_s
    assert bytes(tus.stored["/files/u1"]) == DATA


def test_endless_409_is_a_protocol_error() -> None:
    tus = Tus()
    tus.queue("PATCH", *[answer(409)] * 10)
    result = run(tus, upload())
    assert isinstance(result.error, ProtocolError)
    assert "409" in str(result.error)


def test_a_460_resends_the_chunk_a_bounded_number_of_times() -> None:
    tus = Tus(extensions="creation,checksum", algorithms="sha1,md5")
    tus.queue("PATCH", answer(460), answer(460))
    result = run(tus, upload())
    assert result.error is None
    checksums = [e.request.header("upload-checksum") for e in result.exchanges
                 if e.request.method == "PATCH"]  # fmt: skip
    assert all(c and c.startswith("sha1 ") for c in checksums)
    tus = Tus(extensions="creation,checksum", algorithms="sha1")
    tus.queue("PATCH", *[answer(460)] * 10)
    assert isinstance(run(tus, upload()).error, ChecksumMismatchError)


def test_a_vanished_upload_is_begun_again_after_a_wait() -> None:
    tus = Tus()
    tus.queue("PATCH", answer(204, **{"upload-offset": "4096"}), answer(404))
    result = run(tus, upload())
    assert result.error is None
    assert [type(e).__name__ for e in result.events].count("UploadRestarted") == 1
    second_post = [e for e in result.exchanges if e.request.method == "POST"][1]
    assert second_post.waited_s >= RetryPolicy().floor_s
    assert bytes(tus.stored["/files/u2"]) == DATA


def test_an_upload_that_keeps_vanishing_gives_up() -> None:
    tus = Tus()
    tus.queue("PATCH", *[answer(410)] * 10)
    result = run(tus, upload())
    assert isinstance(result.error, UploadGoneError)
    assert sum(isinstance(e, UploadRestarted) for e in result.events) == 3


def test_a_file_over_tus_max_size_is_refused_before_any_byte() -> None:
    tus = Tus()
    tus.queue("OPTIONS", answer(204, **{"tus-version": "1.0.0", "tus-max-size": "100"}))
    result = run(tus, upload())
    assert isinstance(result.error, StatusError)
    assert result.error.status == 413
    assert methods(result) == ["OPTIONS"]


def test_a_resumed_upload_asks_the_offset_first_and_sends_only_the_rest() -> None:
    tus = Tus()
    tus.stored["/files/old"] = bytearray(DATA[:8192])
    result = run(tus, upload(info=ServerInfo(), upload_url="https://tus.test/files/old",
                             known_offset=4096, sent_to=8192))  # fmt: skip
    assert methods(result) == ["HEAD", "PATCH"]
    assert result.exchanges[1].request.header("upload-offset") == "8192"
    assert bytes(tus.stored["/files/old"]) == DATA


def test_a_lost_answer_is_settled_by_the_offset_the_server_reports() -> None:
    tus = Tus()
    real = tus.patch

    def stored_then_lost(request: Request, body: bytes) -> Response:
        real(request, body)
        raise ConnectionLostError("reset after the body")

    tus.queue("PATCH", stored_then_lost)
    result = run(tus, upload())
    assert result.error is None
    assert methods(result)[2:5] == ["PATCH", "HEAD", "PATCH"]
    assert bytes(tus.stored["/files/u1"]) == DATA  # nothing sent twice


def test_retries_run_out_as_retries_exhausted_with_the_last_cause() -> None:
    tus = Tus()
    tus.queue("OPTIONS", *[answer(503)] * 20)
    result = run(tus, upload(policy=RetryPolicy(max_attempts=3)))
    assert isinstance(result.error, RetriesExhaustedError)
    assert isinstance(result.error.__cause__, StatusError)
    assert len(result.sleeps) == 2


@pytest.mark.parametrize("offset", ["-1", "abc", "²", "9" * 30, ""])
def test_a_malformed_offset_is_a_protocol_error_naming_the_header(offset: str) -> None:
    tus = Tus()
    tus.queue("PATCH", answer(204, **{"upload-offset": offset}))
    result = run(tus, upload())
    assert isinstance(result.error, ProtocolError)
    assert "Upload-Offset" in str(result.error)
