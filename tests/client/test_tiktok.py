"""TikTok posts end to end against the simulated Content Posting API, on a fake clock."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from platform_support import settle_by_checks, sha
from steadypost import AsyncUploader, Journal, Post, PostState, RetryPolicy, Uploader
from steadypost.platforms.base import TokenRequest
from steadypost.platforms.tiktok import TikTokPlatform
from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    RequestRecord,
    SlowProcessing,
    TikTokConfig,
    tiktok_fault,
)

API = "https://open.tiktokapis.com"
TOKEN = "act.test-token-0123456789"
CHUNK = 5 * 1024 * 1024  # TikTok's smallest chunk (5 MB read either way)
MIN, HOUR = 60.0, 3600.0
INIT = "/v2/post/publish/video/init/"


class Crash(BaseException):
    """Stands for the process dying in the middle of a request."""






def make_video(path: Path, size: int, seed: int = 7) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", 3 * CHUNK + 123_456)  # 3 chunks, a longer last


def uploader(
    sim: PlatformSimulator | httpx.BaseTransport, journal: Journal, clock: FakeClock,
    **options: object,
) -> Uploader:  # fmt: skip
    transport = sim.transport() if isinstance(sim, PlatformSimulator) else sim
    options.setdefault("headers", {"Authorization": f"Bearer {TOKEN}"})
    return Uploader(
        client=httpx.Client(transport=transport), journal=journal, sleep=clock.sleep,
        clock=clock.now, rng=random.Random(3),
        retry=RetryPolicy(max_attempts=40, deadline_s=None), **options,  # type: ignore[arg-type]
    )  # fmt: skip


def tiktok(**options: object) -> TikTokPlatform:
    return TikTokPlatform(chunk_size=CHUNK, **options)  # type: ignore[arg-type]


def through_waits(up: Uploader, post: Post, clock: FakeClock) -> Post:
    """Let a post that waits (backoff, or its host's circuit breaker) go on when due."""
    while post.state is PostState.WAITING:
        assert post.next_attempt_at is not None
        clock.advance_to(post.next_attempt_at)
        [post] = up.resume_pending()
    return post



def puts(sim: PlatformSimulator) -> list[RequestRecord]:
    return [r for r in sim.requests if r.method == "PUT"]


def calls(sim: PlatformSimulator, path: str) -> list[RequestRecord]:
    return [r for r in sim.requests if r.path == path]


def test_a_direct_post_goes_up_in_documented_chunks_and_is_confirmed(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, metadata={"title": "Sunset #beach"}, platform=tiktok())
    assert post.state is PostState.CONFIRMED
    [published] = sim.tiktok.published()
    assert published.status == "PUBLISH_COMPLETE"
    assert published.sha256 == sha(video)
    assert dict(published.post_info) == {"privacy_level": "SELF_ONLY", "title": "Sunset #beach"}
    size = video.stat().st_size
    assert [r.headers["content-range"] for r in puts(sim)] == [
        f"bytes 0-{CHUNK - 1}/{size}",
        f"bytes {CHUNK}-{2 * CHUNK - 1}/{size}",
        f"bytes {2 * CHUNK}-{size - 1}/{size}",
    ]
    assert {r.headers["content-type"] for r in puts(sim)} == {"video/mp4"}
    assert [int(r.headers["content-length"]) for r in puts(sim)] == [CHUNK, CHUNK, size - 2 * CHUNK]
    assert all("authorization" not in r.headers for r in puts(sim))  # a capability URL
    assert calls(sim, "/v2/post/publish/creator_info/query/")  # privacy levels asked first
    state = post.extra["tiktok"]
    assert state["publish_id"] == published.publish_id
    assert state["upload_url"] == post.upload_url == published.upload_url
    assert state["upload_url_expires_at"] == state["upload_url_issued_at"] + HOUR
    assert TOKEN not in journal.path.read_bytes().decode("latin-1")  # never journaled


def test_intent_is_journaled_before_init_and_the_publish_id_before_any_chunk(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    inner = sim.transport()
    seen: list[tuple[str, str, dict[str, object]]] = []

    def spy(request: httpx.Request) -> httpx.Response:
        [post] = journal.list()
        seen.append((request.method, request.url.path, dict(post.extra.get("tiktok", {}))))
        return inner.handle_request(request)

    with uploader(httpx.MockTransport(spy), journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
    [init] = [s for s in seen if s[1] == INIT]
    assert "init_started_at" in init[2]
    assert "publish_id" not in init[2]
    chunk_states = [s[2] for s in seen if s[0] == "PUT"]
    assert len(chunk_states) == 3
    assert all(s["publish_id"] == post.extra["tiktok"]["publish_id"] for s in chunk_states)


def test_outage_then_an_ambiguous_last_chunk_is_settled_by_the_status_check(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    now = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[
        Outage(now, now + 20 * MIN, path="/video/", retry_after=120),
        ProcessedButTimeout(on={"final_patch"}),
    ])  # fmt: skip
    with uploader(sim, journal, clock) as up:
        post = through_waits(up, up.post(video, API, platform=tiktok()), clock)
        assert post.state is PostState.UNCONFIRMED  # the last answer was lost: not resent
        assert post.next_attempt_at is not None
        clock.advance_to(post.next_attempt_at)
        [checked] = up.verify_due()
        assert up.resume_pending() == []
    assert checked.state is PostState.CONFIRMED
    [published] = sim.tiktok.published()
    assert published.sha256 == sha(video)
    assert len(calls(sim, INIT)) == 1
    assert len([r for r in puts(sim) if r.status == 206 or r.broken]) == 3  # each chunk once
    waits = [e.data["seconds"] for e in journal.events(post.post_id) if e.kind == "wait"]
    assert waits
    assert min(waits) >= 120  # Retry-After obeyed during the outage


def test_a_lost_last_answer_on_a_slow_video_is_not_posted_again_once_the_url_has_expired(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    # TikTok holds every byte and processes for hours; the upload URL dies after one.
    sim = PlatformSimulator(clock=clock, faults=[
        ProcessedButError(on={"final_patch"}), SlowProcessing(seconds=3 * HOUR)])  # fmt: skip
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
        assert post.state is PostState.UNCONFIRMED  # the last chunk's answer was a 500
        post = settle_by_checks(up, post, clock)
        assert up.resume_pending() == []
    assert post.state is PostState.CONFIRMED, post.last_error
    assert clock.now() > post.created_ts + HOUR  # checked after the URL's end, too
    assert len(calls(sim, INIT)) == 1
    [published] = sim.tiktok.published()
    assert published.sha256 == sha(video)


def test_after_a_crash_the_upload_continues_from_the_last_acknowledged_chunk(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    inner = sim.transport()
    sent: list[str] = []

    def dies_at_the_second_chunk(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            sent.append(request.headers["content-range"])
            if len(sent) == 2:
                raise Crash
        return inner.handle_request(request)

    with uploader(httpx.MockTransport(dies_at_the_second_chunk), journal, clock) as up:
        post = up.add(video, API, platform=tiktok())
        with pytest.raises(Crash):
            up.upload_post(post.post_id)
    stopped = journal.get(post.post_id)
    assert stopped.offset == CHUNK  # the first chunk was acknowledged and journaled
    with uploader(sim, journal, clock) as again:
        [done] = again.resume_pending()
    assert done.state is PostState.CONFIRMED
    assert done.identity.sha256 == sha(video)
    assert len(calls(sim, INIT)) == 1  # the same publish_id, no new init
    ranges = [r.headers["content-range"].split("/")[0] for r in puts(sim)]
    size = video.stat().st_size
    assert ranges == ["bytes 0-5242879", f"bytes {CHUNK}-{2 * CHUNK - 1}",
                      f"bytes {2 * CHUNK}-{size - 1}"]  # fmt: skip


def test_a_retryable_failure_is_posted_again_exactly_once(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[RejectMedia(reason="internal", times=1)])
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
        assert post.state is PostState.UNCONFIRMED
        clock.advance(31 * MIN)
        [checked] = up.verify_due()
        assert checked.state is PostState.QUEUED
        assert "internal" in (checked.last_error or "")
        [again] = up.resume_pending()
        clock.advance(31 * MIN)
        assert up.verify_due() == []
        assert up.resume_pending() == []
    assert again.state is PostState.CONFIRMED
    first, second = sim.tiktok.publishes()
    assert (first.status, first.fail_reason) == ("FAILED", "internal")
    assert second.status == "PUBLISH_COMPLETE"
    assert len(sim.tiktok.published()) == 1
    assert len(calls(sim, INIT)) == 2


def test_a_refused_video_fails_with_tiktoks_reason(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[RejectMedia(reason="file_format_check_failed")])
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
    assert post.state is PostState.FAILED
    assert "file_format_check_failed" in (post.last_error or "")
    assert len(calls(sim, INIT)) == 1


def test_an_upload_url_near_its_end_leads_to_a_new_init_never_a_put_into_it(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    now = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(now, now + 70 * MIN, path="/video/")])
    with uploader(sim, journal, clock) as up:
        post = through_waits(up, up.post(video, API, platform=tiktok()), clock)
    assert post.state is PostState.CONFIRMED
    first, second = sim.tiktok.publishes()
    assert first.received_bytes == 0
    assert second.sha256 == sha(video)
    expiry = {parse_qs(p.upload_url.split("?", 1)[1])["upload_id"][0]: p.url_expires_at
              for p in (first, second)}  # fmt: skip
    for put in puts(sim):
        assert put.at < expiry[parse_qs(put.query)["upload_id"][0]] - 10 * MIN
    assert first.late_puts == second.late_puts == 0
    notes = [e.data["message"] for e in journal.events(post.post_id) if e.kind == "note"]
    assert any("new upload" in n for n in notes)


def test_resuming_after_the_url_expired_starts_a_new_init(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        # Stopped once the init was answered, before the first chunk.
        stopped = up.post(video, API, platform=tiktok(), on_progress=lambda _p: up.cancel())
    assert stopped.state is PostState.WAITING
    assert puts(sim) == []
    assert stopped.extra["tiktok"]["publish_id"]
    clock.advance(2 * HOUR)
    with uploader(sim, journal, clock) as again:
        [done] = again.resume_pending()
    assert done.state is PostState.CONFIRMED
    assert len(sim.tiktok.publishes()) == 2
    assert sim.tiktok.publishes()[0].late_puts == 0


def test_fifty_queued_posts_never_exceed_tiktoks_rate_limits(
    tmp_path: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    clips = [make_video(tmp_path / f"c{i}.mp4", 2_000 + i, seed=i) for i in range(50)]
    daemon_journal = Journal(journal.path, clock=clock.now)  # a second process's connection
    with uploader(sim, journal, clock) as cli, uploader(sim, daemon_journal, clock) as daemon:
        ids = [cli.add(c, API, platform=tiktok()).post_id for c in clips]
        done = [(cli if i % 2 else daemon).upload_post(pid) for i, pid in enumerate(ids)]
    daemon_journal.close()
    assert {p.state for p in done} == {PostState.CONFIRMED}
    assert [r for r in sim.requests if r.status == 429] == []
    for path, limit in ((INIT, 6), ("/v2/post/publish/status/fetch/", 30),
                        ("/v2/post/publish/creator_info/query/", 20)):  # fmt: skip
        times = sorted(r.at for r in calls(sim, path))
        assert len(times) == 50
        assert all(b - a >= 60 for a, b in zip(times, times[limit:], strict=False))
    assert len(sim.tiktok.published()) == 50
    assert any(s >= 1 for s in clock.sleeps)  # it waited instead of being refused


def test_a_rate_limited_init_is_waited_out(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, faults=[
        tiktok_fault("rate_limit_exceeded", status=429, retry_after=45)])  # fmt: skip
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
    assert post.state is PostState.CONFIRMED
    assert max(clock.sleeps) >= 45
    assert len(sim.tiktok.publishes()) == 1


def test_too_many_pending_shares_makes_the_post_wait_not_fail(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[
        tiktok_fault("spam_risk_too_many_pending_share", status=403)])  # fmt: skip
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
        assert post.state is PostState.WAITING
        assert post.next_attempt_at is not None
        assert post.next_attempt_ts - clock.now() >= 3600
        assert "pending" in (post.last_error or "")
        assert up.resume_pending() == []
        clock.advance_to(post.next_attempt_at)
        [done] = up.resume_pending()
    assert done.state is PostState.CONFIRMED


@pytest.mark.parametrize("code", ["access_token_invalid", "scope_not_authorized"])
def test_a_refused_token_asks_the_user_to_reconnect_and_is_never_retried(
    video: Path, journal: Journal, clock: FakeClock, code: str
) -> None:
    path = "/v2/post/publish/creator_info/query/"
    sim = PlatformSimulator(clock=clock, faults=[tiktok_fault(code, status=401, path=path)])
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok())
        assert up.resume_pending() == []
    assert post.state is PostState.FAILED
    assert "reconnect your TikTok account" in (post.last_error or "")
    assert len(sim.requests) == 1
    assert sim.tiktok.publishes() == []


def test_a_token_provider_supplies_fresh_tokens_that_never_reach_the_journal(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    asked: list[TokenRequest] = []

    def provider(request: TokenRequest) -> str:
        asked.append(request)
        return "fresh-oauth-token"

    accepted = TikTokConfig(tokens=frozenset({"fresh-oauth-token"}))
    sim = PlatformSimulator(clock=clock, tiktok=accepted)
    with uploader(sim, journal, clock, headers={}, token_provider=provider) as up:
        post = up.post(video, API, platform=tiktok(account="brand"))
    assert post.state is PostState.CONFIRMED
    assert asked[0] == TokenRequest("tiktok", "brand", API)
    api_calls = [r for r in sim.requests if r.method == "POST"]
    assert {r.headers["authorization"] for r in api_calls} == {"Bearer fresh-oauth-token"}
    assert b"fresh-oauth-token" not in journal.path.read_bytes()


def test_an_inbox_upload_ends_in_the_creators_inbox(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok(mode="inbox"))
    assert post.state is PostState.CONFIRMED
    [published] = sim.tiktok.published()
    assert (published.mode, published.status) == ("inbox", "SEND_TO_USER_INBOX")
    assert calls(sim, "/v2/post/publish/creator_info/query/") == []


def test_a_privacy_level_the_account_may_not_use_fails_before_any_upload(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, tiktok=TikTokConfig(privacy_level_options=("SELF_ONLY",)))
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=tiktok(privacy_level="PUBLIC_TO_EVERYONE"))
    assert post.state is PostState.FAILED
    assert "SELF_ONLY" in (post.last_error or "")
    assert calls(sim, INIT) == []


def test_a_file_tiktok_cannot_take_is_refused_before_any_request(
    tmp_path: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    clip = make_video(tmp_path / "clip.avi", 10_000)
    with uploader(sim, journal, clock) as up:
        post = up.post(clip, API, platform=tiktok())
    assert post.state is PostState.FAILED
    assert "MP4, MOV" in (post.last_error or "")
    assert sim.requests == []


async def test_async_tiktok_post(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButTimeout(on={"final_patch"})])
    client = httpx.AsyncClient(transport=sim.async_transport())
    async with AsyncUploader(
        client=client, journal=journal, sleep=clock.asleep, clock=clock.now,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as up:  # fmt: skip
        post = await up.post(video, API, platform=tiktok())
        assert post.state is PostState.UNCONFIRMED
        clock.advance(31 * MIN)
        [checked] = await up.verify_due()
    assert checked.state is PostState.CONFIRMED
    assert len(sim.tiktok.published()) == 1
