"""X posts end to end: the real uploader against the simulated X API on 127.0.0.1."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from platform_support import settle_by_checks, sha, uploader_for
from steadypost import Journal, PostState, Timeouts, Uploader
from steadypost.platforms.x import XPlatform
from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    ResetMidChunk,
    SimulatorServer,
    SlowProcessing,
    XConfig,
)

SEGMENT = 256 * 1024
TOKEN = "x-user-access-token"
MEDIA = "/2/media/upload"
DAY = 24 * 3600.0






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(random.Random(12).randbytes(3 * SEGMENT + 4321))
    return path


@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock, x=XConfig(tokens=frozenset({TOKEN}), processing_s=12))




def uploader(journal: Journal, clock: FakeClock, **options: object) -> Uploader:
    return uploader_for(journal, clock, token=TOKEN, seed=7, **options)


def x() -> XPlatform:
    return XPlatform(chunk_size=SEGMENT)




def segments(sim: PlatformSimulator) -> int:
    return len([r for r in sim.requests if r.path == MEDIA and r.body_bytes > 2000])




def test_media_goes_up_in_segments_is_processed_and_posted_once(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"text": "Sunset"}, platform=x())
    assert post.state is PostState.CONFIRMED, post.last_error
    [made] = sim.x.posts()
    assert (made.text, made.sha256) == ("Sunset", sha(video))
    assert segments(sim) == 4
    assert any(s == 5 for s in clock.sleeps)  # STATUS every check_after_secs
    assert post.extra["x"]["media_key"] == made.media_keys[0]


def test_only_a_failed_segment_is_sent_again(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    armed: list[bool] = []

    def cut_the_second_segment(progress: object) -> None:
        if getattr(progress, "acknowledged", 0) >= SEGMENT and not armed:
            armed.append(True)
            sim.faults.add(ResetMidChunk(after_bytes=SEGMENT // 2, methods={"POST"}, path=MEDIA),
                           Outage(clock.now(), clock.now() + 60, retry_after=60, path=MEDIA,
                                  times=1))  # fmt: skip

    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"text": "t"}, platform=x(),
                       on_progress=cut_the_second_segment)  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    assert segments(sim) == 6  # four segments, the second cut, refused as busy, sent again
    assert any(s >= 60 for s in clock.sleeps)
    assert sim.x.posts()[0].sha256 == sha(video)


def test_a_create_processed_but_answered_500_is_found_among_recent_posts_never_posted_twice(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButError(on={"publish"}))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"text": "t"}, platform=x())
        assert post.state is PostState.UNCONFIRMED, post.last_error
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.CONFIRMED, post.last_error
    assert len(sim.x.posts()) == 1
    assert len([r for r in sim.requests if r.path == "/2/tweets"]) == 1


def test_a_create_that_timed_out_unposted_is_posted_after_the_scan(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    with uploader(journal, clock, timeouts=Timeouts(read=0.3)) as up:
        sim.faults.add(Outage(clock.now(), clock.now() + 1e9, path="/2/tweets", mode="refuse",
                              times=1))  # fmt: skip
        post = up.post(video, server.url, metadata={"text": "t"}, platform=x())
        assert post.state in (PostState.WAITING, PostState.UNCONFIRMED), post.last_error
        while post.state is not PostState.CONFIRMED:
            assert post.next_attempt_at is not None
            clock.advance_to(post.next_attempt_at)
            up.verify_due()
            up.resume_pending()
            post = journal.get(post.post_id)
    assert len(sim.x.posts()) == 1


def test_a_lost_create_answer_after_a_timeout_is_verified_then_confirmed(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButTimeout(on={"publish"}, hold_s=1.0))
    with uploader(journal, clock, timeouts=Timeouts(read=0.3)) as up:
        post = up.post(video, server.url, metadata={"text": "t"}, platform=x())
        assert post.state is PostState.UNCONFIRMED
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.CONFIRMED
    assert len(sim.x.posts()) == 1


class Crash(BaseException):
    """Stands for the process dying in the middle of a request."""


def test_media_that_expired_while_its_finalize_answer_was_lost_is_uploaded_again(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
) -> None:  # fmt: skip
    # FINALIZE is done but unanswered, and the process dies; it comes back a day later.
    sim.faults.add(ProcessedButTimeout(on={"final_patch"}))
    inner = sim.transport()

    def dies_after_finalize(request: httpx.Request) -> httpx.Response:
        finalize = b"FINALIZE" in request.read()
        try:
            return inner.handle_request(request)
        finally:
            if finalize:
                raise Crash

    api = "https://api.x.test"
    with uploader(journal, clock, client=httpx.Client(
            transport=httpx.MockTransport(dies_after_finalize))) as up:  # fmt: skip
        post = up.add(video, api, metadata={"text": "t"}, platform=x())
        with pytest.raises(Crash):
            up.upload_post(post.post_id)
    first = journal.get(post.post_id).extra["x"]
    assert "finalized" not in first
    clock.advance(DAY + 60)  # the media's expires_after_secs have passed
    with uploader(journal, clock, client=httpx.Client(transport=sim.transport())) as again:
        [done] = again.resume_pending()
        done = settle_by_checks(again, done, clock)
    assert done.state is PostState.CONFIRMED, done.last_error
    [made] = sim.x.posts()  # one post, with new media: the expired one is never used
    assert made.sha256 == sha(video)
    assert done.extra["x"]["media_id"] != first["media_id"]
    assert made.media_keys == (done.extra["x"]["media_key"],)


def test_invalid_media_fails_and_slow_processing_waits(
    video: Path, tmp_path: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(RejectMedia(reason="unsupported codec", times=1))
    with uploader(journal, clock) as up:
        failed = up.post(video, server.url, platform=x())
        assert failed.state is PostState.FAILED
        assert "InvalidMedia" in (failed.last_error or "")
        slow = tmp_path / "slow.mp4"
        slow.write_bytes(b"s" * 9000)
        sim.faults.add(SlowProcessing(seconds=1800, times=1))
        post = up.post(slow, server.url, platform=x())
        # Still processing after ready_wait_s: every byte is up, so it is checked later.
        assert post.state is PostState.UNCONFIRMED
        while post.state is not PostState.CONFIRMED:
            assert post.next_attempt_at is not None
            clock.advance_to(post.next_attempt_at)
            up.verify_due()
            up.resume_pending()
            post = journal.get(post.post_id)
    assert post.state is PostState.CONFIRMED
    assert len(sim.x.posts()) == 1
    assert len([r for r in sim.requests if "INIT" in r.query]) == 0  # INIT went in the body
