"""Property-based tests: the tus flow keeps its promises whatever the server answers.

hypothesis draws every answer of a hostile tus server (:mod:`hostile_tus`):
error statuses with any ``Retry-After``, malformed and Unicode numbers, answers
that accept bytes without moving the offset, one byte acknowledged, offsets
beyond what was sent, lost answers, cut connections, slow answers. The flow
runs on a fake clock through :func:`steadypost.testing.pump`, so thousands of
scripts take seconds. Each script must keep the invariants of DESIGN.md:

* no request without progress unless a wait (at least the policy's floor) came first;
* no wait ends past the deadline, and the flow ends;
* a finished upload means the server holds exactly the file's bytes;
* only a ``SteadypostError`` escapes;
* the body bytes stay within the wire bound;
* no request carries userinfo, and credentials go to the endpoint's origin only.
"""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_tus import ENDPOINT, ORIGIN, PERSONAS, DrawnTus, counted_wire
from steadypost.errors import ConfigurationError, ProtocolError, SteadypostError
from steadypost.flow import FileBody, RetryContext, WireMeter
from steadypost.flow.events import PlatformAnswered
from steadypost.models import LocalFile, UploadResult
from steadypost.platforms.tus import TusOptions, TusUpload
from steadypost.policy import (
    REAL_PROGRESS_BYTES,
    RetryPolicy,
    header_int,
    is_ascii_number,
    parse_retry_after,
)
from steadypost.testing import FakeClock, ScriptedRun, pump

MiB = 1024 * 1024
SIZES = (0, 1, 7, 1000, 70_000, 2 * MiB + 3)
CHUNKS = (1, 3, 1000, 65_536, MiB, 64 * MiB)
POLICY = RetryPolicy()
TOKEN = "Bearer secret-token"


def check_waits(run: ScriptedRun[UploadResult], server: DrawnTus, floor: float) -> None:
    """No request without progress unless a wait came first (see :mod:`hostile_tus`)."""
    verdicts = [v.kind for v in server.verdicts]
    assert len(verdicts) == len(run.exchanges)

    def cleared(i: int) -> bool:  # request i came after a wait or a progress answer
        return i == 0 or run.exchanges[i].waited_s >= floor or verdicts[i - 1] == "progress"

    for i in range(1, len(run.exchanges)):
        if cleared(i):
            continue
        # The one request a valid HEAD enables (the PATCH from its offset) may follow at once.
        ok = verdicts[i - 1] == "head" and cleared(i - 1)
        method = run.exchanges[i].request.method
        history = [(e.request.method, v, round(e.waited_s, 3))
                   for e, v in zip(run.exchanges[: i + 1], verdicts, strict=False)]  # fmt: skip
        assert ok, f"{method} #{i} without progress or a wait: {history[-6:]}"


def check_deadline(run: ScriptedRun[UploadResult], deadline: float) -> None:
    for exchange in run.exchanges:
        if exchange.waited_s:
            assert exchange.at <= deadline + 1e-6, "a wait ended past the deadline"


def check_wire(run: ScriptedRun[UploadResult], limit: int | None) -> None:
    spent = sum(
        counted_wire(e.response, e.error, e.request.body.length)
        for e in run.exchanges
        if isinstance(e.request.body, FileBody)
    )
    assert limit is None or spent <= limit, f"{spent} body bytes, bound {limit}"


def check_credentials(run: ScriptedRun[UploadResult]) -> None:
    for exchange in run.exchanges:
        parts = urlsplit(exchange.request.url)
        assert "@" not in parts.netloc, f"userinfo sent: {exchange.request.url}"
        if f"{parts.scheme}://{parts.netloc}" != ORIGIN:
            assert exchange.request.header("authorization") is None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_tus_upload_keeps_its_promises_whatever_the_server_answers(data: st.DataObject) -> None:
    size = data.draw(st.sampled_from(SIZES), label="size")
    chunk = data.draw(st.sampled_from([c for c in CHUNKS if size <= 40 * c]), label="chunk")
    content = random.Random(size).randbytes(size)
    clock = FakeClock()
    deadline = clock.now() + (POLICY.deadline_s or 0)
    retry = RetryContext(policy=POLICY, clock=clock.now,
                         rng=random.Random(data.draw(st.integers(0, 9))), deadline=deadline)
    options = TusOptions(chunk_size=chunk, headers={"Authorization": TOKEN},
                         checksum=data.draw(st.booleans(), label="checksum"))  # fmt: skip
    answered = data.draw(st.booleans(), label="answered before")
    upload = TusUpload(ENDPOINT, LocalFile("/videos/clip.mp4", size, 1), options, retry,
                       answered=answered)  # fmt: skip
    threshold = max(1, min(chunk, REAL_PROGRESS_BYTES))
    server = DrawnTus(data.draw, clock, size=size, threshold=threshold,
                      honest=data.draw(st.sampled_from((2, 6, 20)), label="honesty"),
                      persona=data.draw(st.sampled_from(PERSONAS), label="persona"))  # fmt: skip

    run = pump(upload.run(), server, data=content, clock=clock, max_effects=20_000)

    assert run.error is None or isinstance(run.error, SteadypostError), repr(run.error)
    if isinstance(run.error, ConfigurationError):  # a wrong URL: only for a new endpoint,
        assert not answered  # and before anything answered like tus
        assert not any(isinstance(e, PlatformAnswered) for e in run.events)
    check_waits(run, server, POLICY.floor_s)
    check_deadline(run, deadline)
    check_wire(run, WireMeter.for_file(POLICY, size, chunk).limit)
    check_credentials(run)
    if run.error is None:
        assert run.result is not None
        assert server.stored(run.result.upload_url) == content, "finished without the bytes"


@given(st.text(max_size=60) | st.sampled_from(("9" * 5000, "²", "12", " 7 ", "007")))
def test_header_numbers_are_ascii_digits_or_a_protocol_error(text: str) -> None:
    if not is_ascii_number(text.strip(" \t")):
        with pytest.raises(ProtocolError, match="Upload-Offset"):
            header_int(text, name="Upload-Offset", where="HEAD https://x/1")
        return
    value = header_int(text, name="Upload-Offset", where="HEAD https://x/1")
    assert value == int(text.strip(" \t"))
    assert value >= 0
    assert text.strip(" \t").isascii()


@given(st.text(max_size=80) | st.sampled_from(("9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT")))
def test_retry_after_never_raises_and_stays_finite(text: str) -> None:
    wait = parse_retry_after(text, now=1_800_000_000.0)
    assert wait is None or 0 <= wait <= 7 * 24 * 3600
