"""Vimeo posts end to end against the simulated Vimeo API and its tus upload links."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from platform_support import sha
from steadypost import Journal, PostState, RetryPolicy, Uploader
from steadypost.platforms.vimeo import VimeoPlatform
from steadypost.testing import (
    FakeClock,
    PlatformSimulator,
    ProcessedButTimeout,
    RejectMedia,
    VimeoConfig,
)

API = "https://api.vimeo.com"
UPLOADS = "https://files.vimeo.test"
TOKEN = "vimeo-test-token-0123456789"
CHUNK = 64 * 1024
MIN, HOUR = 60.0, 3600.0


class Crash(BaseException):
    """Stands for the process dying in the middle of a request."""






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "talk.mp4"
    path.write_bytes(random.Random(5).randbytes(5 * CHUNK + 999))
    return path


def simulator(clock: FakeClock, **options: object) -> PlatformSimulator:
    config = VimeoConfig(require_authorization=f"Bearer {TOKEN}", upload_origin=UPLOADS,
                         **options)  # type: ignore[arg-type]  # fmt: skip
    return PlatformSimulator(clock=clock, vimeo=config)


def uploader(
    sim: PlatformSimulator | httpx.BaseTransport, journal: Journal, clock: FakeClock,
    token: str = TOKEN,
) -> Uploader:  # fmt: skip
    transport = sim.transport() if isinstance(sim, PlatformSimulator) else sim
    return Uploader(
        client=httpx.Client(transport=transport), journal=journal, sleep=clock.sleep,
        clock=clock.now, rng=random.Random(2), chunk_size=CHUNK,
        headers={"Authorization": f"Bearer {token}"},
        retry=RetryPolicy(max_attempts=10, deadline_s=None),
    )  # fmt: skip



def test_a_vimeo_post_is_confirmed_only_when_transcoding_completes(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock, processing_s=2 * HOUR)
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, metadata={"title": "My talk"}, platform=VimeoPlatform())
        assert post.state is PostState.UNCONFIRMED  # every byte is up, transcoding is not
        uploaded_at = clock.now()
        while post.state is PostState.UNCONFIRMED:
            assert post.next_attempt_at is not None
            clock.advance_to(post.next_attempt_at)
            [post] = up.verify_due()
    assert post.state is PostState.CONFIRMED
    assert clock.now() >= uploaded_at + 2 * HOUR
    checks = [e.data["status"] for e in journal.events(post.post_id) if e.kind == "verify"]
    assert checks[0] == "processing"
    assert checks[-1] == "processed"
    [info] = sim.vimeo.videos()
    assert (info.name, info.transcode_status, info.sha256) == ("My talk", "complete", sha(video))
    assert post.extra["vimeo"]["uri"] == info.uri


def test_the_bytes_go_by_tus_to_the_upload_link_without_the_token(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock)
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=VimeoPlatform())
    assert post.state is PostState.CONFIRMED
    api = [r for r in sim.requests if r.origin == API]
    links = [r for r in sim.requests if r.origin == UPLOADS]
    assert (api[0].method, api[0].path) == ("POST", "/me/videos")
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api)
    assert all("vnd.vimeo" in r.headers["accept"] for r in api)
    assert {r.method for r in links} == {"PATCH"}  # no tus creation: Vimeo made the upload
    assert all("authorization" not in r.headers for r in links)
    assert post.upload_url == post.extra["vimeo"]["upload_link"]
    assert TOKEN.encode() not in journal.path.read_bytes()


def test_a_lost_answer_to_the_last_patch_is_settled_by_head_not_by_resending(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock, processing_s=10 * MIN)
    sim.faults.add(ProcessedButTimeout(on={"final_patch"}))
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=VimeoPlatform())
        assert post.state is PostState.UNCONFIRMED  # transcoding
        clock.advance(31 * MIN)
        [checked] = up.verify_due()
        assert up.resume_pending() == []
    assert checked.state is PostState.CONFIRMED
    assert len(sim.vimeo.videos()) == 1
    link = [(r.method, r.status) for r in sim.requests if r.origin == UPLOADS]
    assert link[-2:] == [("PATCH", None), ("HEAD", 200)]  # the offset settled it


def test_after_a_crash_the_same_video_is_resumed_from_vimeos_offset(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock)
    inner = sim.transport()
    patches: list[int] = []

    def dies_at_the_third_patch(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            patches.append(int(request.headers["upload-offset"]))
            if len(patches) == 3:
                raise Crash
        return inner.handle_request(request)

    with uploader(httpx.MockTransport(dies_at_the_third_patch), journal, clock) as up:
        post = up.add(video, API, platform=VimeoPlatform())
        with pytest.raises(Crash):
            up.upload_post(post.post_id)
    before = len(sim.requests)
    with uploader(sim, journal, clock) as again:
        [done] = again.resume_pending()
    assert done.state is PostState.CONFIRMED
    assert done.identity.sha256 == sha(video)
    [info] = sim.vimeo.videos()
    assert info.sha256 == sha(video)
    resumed = [r for r in sim.requests[before:] if r.origin == UPLOADS]
    assert resumed[0].method == "HEAD"  # asks Vimeo for its offset first
    assert len([r for r in sim.requests if r.path == "/me/videos"]) == 1


def test_an_expired_upload_link_gets_a_new_video(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock)
    with uploader(sim, journal, clock) as up:
        stopped = up.post(video, API, platform=VimeoPlatform(),
                          on_progress=lambda p: up.cancel() if p.acknowledged else None)
    assert stopped.state is PostState.WAITING
    clock.advance(25 * HOUR)  # the simulated tus server drops unfinished uploads after a day
    with uploader(sim, journal, clock) as again:
        [done] = again.resume_pending()
    assert done.state is PostState.CONFIRMED
    first, second = sim.vimeo.videos()
    assert first.upload_status == "in_progress"
    assert second.sha256 == sha(video)
    assert done.extra["vimeo"]["uri"] == second.uri


def test_a_transcoding_error_fails_the_post(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock)
    sim.faults.add(RejectMedia())
    with uploader(sim, journal, clock) as up:
        post = up.post(video, API, platform=VimeoPlatform())
    assert post.state is PostState.FAILED
    assert "transcoding: error" in (post.last_error or "")


def test_a_refused_token_asks_the_user_to_reconnect(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = simulator(clock)
    with uploader(sim, journal, clock, token="expired") as up:
        post = up.post(video, API, platform=VimeoPlatform())
    assert post.state is PostState.FAILED
    assert "reconnect your Vimeo account" in (post.last_error or "")
    assert len(sim.requests) == 1
