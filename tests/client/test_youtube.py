"""YouTube posts end to end: the real uploader against the simulated YouTube on 127.0.0.1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest

from platform_support import settle_by_checks, sha
from steadypost import Journal, Post, PostState, RetryPolicy, Timeouts, Uploader
from steadypost.platforms.oauth import OAuthRefresh
from steadypost.platforms.youtube import YouTubePlatform
from steadypost.platforms.youtube.api import next_pacific_midnight
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
    YouTubeConfig,
)

KiB = 1024
GRANULE = 256 * KiB
TOKEN = "ya29.static-test-token"
MIN, HOUR = 60.0, 3600.0
UPLOAD = "/upload/youtube/v3/videos"


class Crash(BaseException):
    """Stands for the process dying in the middle of a request."""






def make_video(path: Path, size: int, seed: int = 11) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", 3 * GRANULE + 12_345)


@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock)




def uploader(journal: Journal, clock: FakeClock, **options: object) -> Uploader:
    options.setdefault("headers", {"Authorization": f"Bearer {TOKEN}"})
    options.setdefault("retry", RetryPolicy(max_attempts=30, deadline_s=None))
    return Uploader(
        journal=journal, sleep=clock.sleep, clock=clock.now, rng=random.Random(4),
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def youtube(**options: object) -> YouTubePlatform:
    options.setdefault("chunk_size", GRANULE)
    return YouTubePlatform(**options)  # type: ignore[arg-type]


def dumps(value: object) -> str:
    return json.dumps(value, default=dict)




def puts(sim: PlatformSimulator) -> list[str]:
    return [r.headers.get("content-range", "") for r in sim.requests if r.method == "PUT"]


def through_waits(up: Uploader, post: Post, clock: FakeClock) -> Post:
    while post.state is PostState.WAITING:
        assert post.next_attempt_at is not None
        clock.advance_to(post.next_attempt_at)
        up.resume_pending()
        post = up.journal.get(post.post_id)
    return post




def test_a_video_goes_up_in_256_kib_chunks_to_a_journaled_session_and_is_confirmed(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "Sunset", "tags": "beach, sun"},
                       platform=youtube())  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    [published] = sim.youtube.published()
    assert published.sha256 == sha(video)
    assert (published.title, published.privacy_status) == ("Sunset", "private")
    assert published.resource["snippet"]["tags"] == ["beach", "sun"]
    size = video.stat().st_size
    assert puts(sim) == [f"bytes {i * GRANULE}-{min(size, (i + 1) * GRANULE) - 1}/{size}"
                         for i in range(4)]  # fmt: skip
    state = post.extra["youtube"]
    assert state["video_id"] == published.video_id
    assert post.upload_url == state["session_uri"]
    events = journal.events(post.post_id)
    first_put = next(i for i, e in enumerate(events)
                     if e.kind == "request" and e.data["method"] == "PUT")  # fmt: skip
    checkpoints = [e for e in events[:first_put] if e.kind == "request"]
    assert [e.data["method"] for e in checkpoints] == ["POST"]  # initiation, then the bytes
    assert TOKEN not in dumps([dict(e.data) for e in events]) + dumps(dict(post.extra))


def test_a_last_chunk_processed_but_answered_500_is_probed_never_sent_again(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButError(on={"final_patch"}))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube())
    assert post.state is PostState.CONFIRMED, post.last_error
    assert len(sim.youtube.videos()) == 1
    size = video.stat().st_size
    assert puts(sim)[-1] == f"bytes */{size}"  # the probe got the final answer again
    assert puts(sim).count(f"bytes {3 * GRANULE}-{size - 1}/{size}") == 1


def test_a_lost_final_answer_during_an_outage_is_verified_later_and_confirmed_once(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(ProcessedButTimeout(on={"final_patch"}, hold_s=1.0))
    with uploader(journal, clock, retry=RetryPolicy(max_attempts=1, deadline_s=None),
                  timeouts=Timeouts(read=0.3)) as up:  # fmt: skip
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube())
        assert post.state is PostState.UNCONFIRMED, post.last_error
        now = clock.now()
        sim.faults.add(Outage(now, now + 2 * HOUR, path=UPLOAD))  # the checks meet an outage
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.CONFIRMED, post.last_error
    assert clock.now() >= now + 2 * HOUR
    assert len(sim.youtube.videos()) == 1
    assert sim.youtube.sessions() == 1


def test_a_cut_mid_chunk_resumes_from_what_youtube_holds(
    tmp_path: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    video = make_video(tmp_path / "big.mp4", 4 * GRANULE * 2 + 99)
    sim.faults.add(ResetMidChunk(after_bytes=GRANULE + 1000, methods={"PUT"}),
                   Outage(clock.now(), clock.now() + 30, retry_after=30, path=UPLOAD, times=2))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "t"},
                       platform=youtube(chunk_size=4 * GRANULE))  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    [published] = sim.youtube.published()
    assert published.sha256 == sha(video)
    size = video.stat().st_size
    ranges = puts(sim)
    assert f"bytes {GRANULE}-{5 * GRANULE - 1}/{size}" in ranges  # resumed at the granule held
    assert any(s >= 30 for s in clock.sleeps)  # Retry-After obeyed


def test_a_crashed_run_resumes_the_journaled_session(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    seen: list[int] = []

    def crash_after_two(progress: object) -> None:
        acknowledged = getattr(progress, "acknowledged", 0)
        seen.append(acknowledged)
        if acknowledged >= 2 * GRANULE:
            raise Crash

    with uploader(journal, clock) as up:
        post = up.add(video, server.url, metadata={"title": "t"}, platform=youtube())
        with pytest.raises(Crash):
            up.upload_post(post.post_id, on_progress=crash_after_two)
    with uploader(journal, clock) as up:
        [post] = up.resume_pending()
    assert post.state is PostState.CONFIRMED, post.last_error
    assert sim.youtube.sessions() == 1
    assert sim.youtube.published()[0].sha256 == sha(video)
    size = video.stat().st_size
    assert puts(sim).count(f"bytes */{size}") == 1  # the new run asked first


def test_a_lapsed_session_starts_over_but_only_before_the_last_byte(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    lapsed: list[bool] = []

    def lapse(progress: object) -> None:
        if getattr(progress, "acknowledged", 0) >= GRANULE and not lapsed:
            lapsed.append(True)
            sim.youtube.lapse_sessions()

    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube(),
                       on_progress=lapse)  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    assert sim.youtube.sessions() == 2
    assert len(sim.youtube.videos()) == 1
    assert any(e.kind == "note" for e in journal.events(post.post_id))


def test_quota_exceeded_parks_the_channel_until_midnight_pacific(
    video: Path, tmp_path: Path, journal: Journal, clock: FakeClock, server: SimulatorServer,
    sim: PlatformSimulator,
) -> None:  # fmt: skip
    other = make_video(tmp_path / "other.mp4", GRANULE + 7, seed=3)
    sim.youtube.config = YouTubeConfig(quota_per_day=1600 + 10)
    with uploader(journal, clock) as up:
        first = up.post(other, server.url, metadata={"title": "a"}, platform=youtube())
        assert first.state is PostState.CONFIRMED
        post = up.post(video, server.url, metadata={"title": "b"}, platform=youtube())
        assert post.state is PostState.WAITING
        assert "quota" in (post.last_error or "")
        posts_before = len([r for r in sim.requests if r.method == "POST"])
        third = up.post(make_video(tmp_path / "third.mp4", GRANULE, seed=9), server.url,
                        metadata={"title": "c"}, platform=youtube())  # fmt: skip
        assert third.state is PostState.WAITING  # held in the journal: no request at all
        assert len([r for r in sim.requests if r.method == "POST"]) == posts_before
        reset = next_pacific_midnight(clock.now())
        post = through_waits(up, journal.get(post.post_id), clock)
    assert post.state is PostState.CONFIRMED, post.last_error
    starts = [r.at for r in sim.requests if r.method == "POST" and r.path == UPLOAD]
    assert starts[-1] >= reset
    assert sim.youtube.config.quota_per_day == 1610


def test_upload_limit_exceeded_waits_a_day(
    video: Path, tmp_path: Path, journal: Journal, clock: FakeClock, server: SimulatorServer,
    sim: PlatformSimulator,
) -> None:  # fmt: skip
    sim.youtube.config = YouTubeConfig(uploads_per_day=1)
    with uploader(journal, clock) as up:
        up.post(make_video(tmp_path / "a.mp4", GRANULE, seed=1), server.url,
                metadata={"title": "a"}, platform=youtube())  # fmt: skip
        post = up.post(video, server.url, metadata={"title": "b"}, platform=youtube())
        assert post.state is PostState.WAITING
        parked_at = clock.now()
        post = through_waits(up, post, clock)
    assert post.state is PostState.CONFIRMED
    assert clock.now() >= parked_at + 24 * HOUR


def test_a_duplicate_rejection_is_confirmed_elsewhere_and_never_posted_again(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        first = up.post(video, server.url, metadata={"title": "a"}, platform=youtube())
        copy = video.with_name("copy.mp4")
        copy.write_bytes(video.read_bytes())
        again = up.post(copy, server.url, metadata={"title": "a"}, platform=youtube())
    assert first.state is PostState.CONFIRMED
    assert again.state is PostState.CONFIRMED
    evidence = [e for e in journal.events(again.post_id) if e.kind == "state"]
    assert "duplicate" in dumps([dict(e.data) for e in evidence])
    assert sim.youtube.sessions() == 2


def test_rejected_media_fails_with_youtubes_reason(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.faults.add(RejectMedia(reason="codec"), SlowProcessing(seconds=20 * MIN))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube())
        assert post.state is PostState.UNCONFIRMED  # uploaded, processing
        post = settle_by_checks(up, post, clock)
    assert post.state is PostState.FAILED
    assert "codec" in (post.last_error or "")


def test_an_expired_token_is_refreshed_mid_upload_and_the_session_kept(
    tmp_path: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    video = make_video(tmp_path / "long.mp4", 6 * GRANULE)
    sim.youtube.config = YouTubeConfig(tokens=frozenset(), token_lifetime_s=400,
                                       refresh_tokens={"1//refresh-secret": "client-1"})
    oauth = OAuthRefresh(token_url=f"{server.url}/token", client_id="client-1",
                         refresh_token="1//refresh-secret", margin_s=0)  # fmt: skip
    expired: list[bool] = []

    def expire_once(progress: object) -> None:
        if getattr(progress, "acknowledged", 0) >= 2 * GRANULE and not expired:
            expired.append(True)
            sim.youtube.expire_tokens()  # YouTube ends the token before its announced end

    with uploader(journal, clock, headers={}, token_provider=lambda _req: oauth) as up:
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube(),
                       on_progress=expire_once)  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    assert oauth.refreshes >= 2
    assert sim.youtube.sessions() == 1
    assert [r.status for r in sim.requests if r.status == 401]
    text = dumps([dict(e.data) for e in journal.events(post.post_id)]) + dumps(
        dict(post.extra))  # fmt: skip
    assert "refresh-secret" not in text
    assert "ya29.sim" not in text


def test_an_unknown_channel_token_fails_and_says_to_reconnect(
    video: Path, journal: Journal, clock: FakeClock, sim: PlatformSimulator,
    server: SimulatorServer,
) -> None:  # fmt: skip
    sim.youtube.config = YouTubeConfig(tokens=frozenset({"good"}))
    with uploader(journal, clock) as up:
        post = up.post(video, server.url, metadata={"title": "t"}, platform=youtube())
    assert post.state is PostState.FAILED
    assert "connect the YouTube channel again" in (post.last_error or "")
    assert sim.youtube.sessions() == 0


def test_the_simulator_answers_the_probe_after_the_end_with_the_final_answer(
    sim: PlatformSimulator, server: SimulatorServer
) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer x"}) as c:
        start = c.post(f"{UPLOAD}?uploadType=resumable&part=snippet", json={"snippet": {
            "title": "raw"}}, headers={"X-Upload-Content-Length": str(GRANULE + 1)})  # fmt: skip
        session = start.headers["location"]
        probe = {"Content-Range": f"bytes */{GRANULE + 1}"}
        assert c.put(session, headers=probe).status_code == 308
        half = c.put(session, content=b"a" * 1000, headers={
            "Content-Range": f"bytes 0-999/{GRANULE + 1}"})  # fmt: skip
        assert half.status_code == 400  # not a multiple of 256 KiB
        part = c.put(session, content=b"a" * GRANULE, headers={
            "Content-Range": f"bytes 0-{GRANULE - 1}/{GRANULE + 1}"})  # fmt: skip
        assert (part.status_code, part.headers["range"]) == (308, f"bytes=0-{GRANULE - 1}")
        done = c.put(session, content=b"b", headers={
            "Content-Range": f"bytes {GRANULE}-{GRANULE}/{GRANULE + 1}"})  # fmt: skip
        assert done.status_code == 201
        again = c.put(session, headers={"Content-Range": f"bytes */{GRANULE + 1}"})
        assert (again.status_code, again.json()["id"]) == (201, done.json()["id"])
        listed = c.get("/youtube/v3/videos", params={"part": "status", "id": done.json()["id"]})
    assert listed.json()["items"][0]["status"]["uploadStatus"] == "processed"
