"""Instagram Reels end to end: the real uploader against the simulated Graph API on 127.0.0.1."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from platform_support import settle_by_checks, sha, uploader_for
from steadypost import Journal, PostState, Timeouts, Uploader
from steadypost.platforms.instagram import InstagramPlatform
from steadypost.testing import (
    FakeClock,
    InstagramConfig,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    ResetMidChunk,
    Respond,
    SimulatorServer,
    SlowProcessing,
)

IG = "17841400000000001"
TOKEN = "IGQ-long-lived-test-token"
MIN, HOUR = 60.0, 3600.0






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "reel.mp4"
    path.write_bytes(random.Random(8).randbytes(700_001))
    return path


@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock, instagram=InstagramConfig(
        tokens=frozenset({TOKEN}), processing_s=90))  # fmt: skip




def uploader(journal: Journal, clock: FakeClock, **options: object) -> Uploader:
    return uploader_for(journal, clock, token=TOKEN, seed=6, **options)


def instagram() -> InstagramPlatform:
    return InstagramPlatform(ig_user_id=IG)




def calls(sim: PlatformSimulator, suffix: str) -> int:
    return len([r for r in sim.requests if r.path.endswith(suffix)])




def test_a_reel_is_made_uploaded_polled_and_published_once(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"caption": "Sunset #beach"},
                       platform=instagram())  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    [reel] = sim.instagram.published()
    assert (reel.sha256, reel.caption, reel.publishes) == (sha(video), "Sunset #beach", 1)
    [upload] = [r for r in sim.requests if r.path.startswith("/ig-api-upload/")]
    assert upload.headers["authorization"] == f"OAuth {TOKEN}"
    assert (upload.headers["offset"], upload.headers["file_size"]) == ("0", "700001")
    assert 60.0 in clock.sleeps  # polled IN_PROGRESS once a minute
    assert calls(sim, "/content_publishing_limit") == 1  # read before the publish
    assert post.extra["instagram"]["container_id"] == reel.container_id


def test_a_publish_processed_but_answered_500_is_settled_by_published_never_a_second_publish(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButError(on={"publish"}))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"caption": "c"}, platform=instagram())
        assert post.state is PostState.UNCONFIRMED, post.last_error
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.CONFIRMED, post.last_error
    assert calls(sim, "/media_publish") == 1
    [reel] = sim.instagram.published()
    assert reel.publishes == 1


def test_a_lost_publish_answer_that_did_not_publish_is_published_after_the_check(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(Respond(status=500, path=f"/{IG}/media_publish", times=1,
                           body=b'{"error": {"code": 2, "message": "Service temporarily '
                                b'unavailable", "type": "OAuthException"}}'))  # fmt: skip
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"caption": "c"}, platform=instagram())
        assert post.state is PostState.UNCONFIRMED  # a 5xx on publish: maybe published
        post = settle_by_checks(up, post, clock)
        assert post.state is PostState.QUEUED  # FINISHED, not PUBLISHED: it was not
        [post] = up.resume_pending()
    assert post.state is PostState.CONFIRMED, post.last_error
    assert len(sim.instagram.published()) == 1
    assert len(sim.instagram.reels()) == 1  # the same container, uploaded once


def test_an_outage_and_a_cut_upload_are_ridden_out(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    now = clock.now()
    sim.faults.add(Outage(now, now + 10 * MIN, retry_after=120, path=f"/{IG}/media"),
                   ResetMidChunk(after_bytes=300_000, methods={"POST"}, path="/ig-api-upload/"))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"caption": "c"}, platform=instagram())
    assert post.state is PostState.CONFIRMED, post.last_error
    [reel] = sim.instagram.published()
    assert reel.sha256 == sha(video)
    assert any(s >= 120 for s in clock.sleeps)
    assert post.bytes_sent <= 2 * video.stat().st_size + video.stat().st_size


def test_a_full_publishing_limit_read_from_the_api_makes_the_post_wait(
    video: Path, tmp_path: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.instagram.config = InstagramConfig(tokens=frozenset({TOKEN}), quota_total=1)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"x" * 1000)
    with uploader(journal, clock) as up:
        assert up.post(other, server.url, platform=instagram()).state is PostState.CONFIRMED
        post = up.post(video, server.url, metadata={"caption": "c"}, platform=instagram())
        assert post.state is PostState.WAITING
        assert "1 of its 1 posts" in (post.last_error or "")
        assert calls(sim, "/media_publish") == 1  # the limit was read, not hit
        clock.advance(25 * HOUR)
        [post] = up.resume_pending()
    assert post.state is PostState.CONFIRMED, post.last_error
    assert len(sim.instagram.published()) == 2


def test_an_error_container_fails_with_its_status_and_slow_processing_is_checked_later(
    video: Path, tmp_path: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(RejectMedia(reason="2207026: unsupported video format", times=1))
    with uploader(journal, clock) as up:
        failed = up.post(video, server.url, platform=instagram())
        assert failed.state is PostState.FAILED
        assert "2207026" in (failed.last_error or "")
        slow = tmp_path / "slow.mp4"
        slow.write_bytes(b"s" * 5000)
        sim.faults.add(SlowProcessing(seconds=40 * MIN))
        post = up.post(slow, server.url, platform=instagram())
        assert post.state is PostState.UNCONFIRMED  # still IN_PROGRESS after 5 min
        post = settle_by_checks(up, post, clock)
        assert post.state is PostState.QUEUED
        [post] = up.resume_pending()
    assert post.state is PostState.CONFIRMED
    assert len(sim.instagram.published()) == 1


def test_a_timed_out_publish_is_unconfirmed_then_confirmed(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButTimeout(on={"publish"}, hold_s=1.0))
    with uploader(journal, clock, timeouts=Timeouts(read=0.3)) as up:
        post = up.post(video, server.url, platform=instagram())
        assert post.state is PostState.UNCONFIRMED
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.CONFIRMED
    assert calls(sim, "/media_publish") == 1


def test_an_expired_token_fails_and_says_to_reconnect(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.instagram.config = InstagramConfig(tokens=frozenset({"another"}))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, platform=instagram())
    assert post.state is PostState.FAILED
    assert "connect the Instagram account again" in (post.last_error or "")
