"""Journaled posts against the in-process simulator, on a shared fake clock."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
import pytest

from steadypost import (
    AsyncUploader,
    FileProblemError,
    Journal,
    PostOptions,
    PostState,
    RetryPolicy,
    Uploader,
)
from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButTimeout,
    Respond,
)

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
CHUNK = 64 * 1024






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(hashlib.sha256(b"seed").digest() * 8000)  # 256,000 bytes
    return path


def uploader(sim: PlatformSimulator, journal: Journal, clock: FakeClock, **kw: object) -> Uploader:
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    return Uploader(
        client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
        chunk_size=CHUNK, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_post_is_confirmed_and_journaled(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, metadata={"caption": "sunset"})
    assert post.state is PostState.CONFIRMED
    assert post.offset == post.identity.size == 256_000
    assert post.identity.sha256 == digest(video)
    assert post.lease_owner is None
    [info] = sim.uploads.values()
    assert info.completed
    assert info.sha256 == digest(video)
    assert info.metadata["post_id"] == post.post_id
    assert info.metadata["caption"] == "sunset"
    kinds = [e.kind for e in journal.events(post.post_id)]
    assert kinds.count("request") == len(sim.requests)
    states = [e.data.get("to") for e in journal.events(post.post_id) if e.kind == "state"]
    assert states[-1] == "confirmed"


def test_intent_is_journaled_before_each_request(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, extensions=("creation", "termination"))
    inner = sim.transport()
    seen: list[tuple[str, str, str | None, int]] = []

    def spy(request: httpx.Request) -> httpx.Response:
        [post] = journal.list()
        seen.append((request.method, post.state.value, post.upload_url, post.offset))
        return inner.handle_request(request)

    client = httpx.Client(transport=httpx.MockTransport(spy), base_url=BASE)
    with Uploader(client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
                  chunk_size=CHUNK) as up:  # fmt: skip
        post = up.post(video, ENDPOINT)
    upload_url = post.upload_url
    assert seen[0][:3] == ("OPTIONS", "uploading", None)
    assert seen[1][:3] == ("POST", "uploading", None)  # the post row exists before creation
    patches = [s for s in seen if s[0] == "PATCH"]
    assert all(s[2] == upload_url for s in patches)  # URL stored before the first PATCH
    assert [s[3] for s in patches] == [i * CHUNK for i in range(len(patches))]  # offset per chunk


def test_outage_longer_than_the_deadline_leaves_the_post_waiting(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    now = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(now, now + 7200, retry_after=600)])
    policy = RetryPolicy(deadline_s=1800)
    with uploader(sim, journal, clock, retry=policy) as up:
        post = up.post(video, ENDPOINT)
        assert post.state is PostState.WAITING
        assert post.next_attempt_at is not None
        assert post.next_attempt_ts >= clock.now() + 600
        assert "503" in (post.last_error or "")
        waits = [e for e in journal.events(post.post_id) if e.kind == "wait"]
        assert waits
        assert all(w.data["seconds"] >= 600 for w in waits)
        assert up.resume_pending() == []  # not due yet: nothing is sent
        clock.advance_to(now + 7200)
        [done] = up.resume_pending()
    assert done.state is PostState.CONFIRMED
    assert len(sim.uploads) == 1


def test_lost_answer_after_the_last_byte_makes_the_post_unconfirmed(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(
        clock=clock,
        faults=[
            ProcessedButTimeout(on={"final_patch"}),  # processed, but the answer never comes
            Respond(status=503, methods={"HEAD"}, times=99),  # and the server stays busy
        ],
    )
    policy = RetryPolicy(max_attempts=3, deadline_s=None)
    with uploader(sim, journal, clock, retry=policy) as up:
        before = clock.now()
        post = up.post(video, ENDPOINT)
    assert post.state is PostState.UNCONFIRMED
    assert post.next_attempt_at is not None
    delay = post.next_attempt_ts - clock.now()
    assert 15 * 60 <= delay <= 30 * 60, (delay, clock.now() - before)
    [info] = sim.uploads.values()
    assert info.completed  # it was processed: verification will confirm it, not re-post


def test_failures_before_the_last_byte_leave_the_post_waiting(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=500, methods={"PATCH"}, times=99)])
    with uploader(sim, journal, clock, retry=RetryPolicy(max_attempts=3, deadline_s=None)) as up:
        post = up.post(video, ENDPOINT)
    # A 500 may mean "processed", but the last byte never left: nothing to verify, just wait.
    assert post.state is PostState.WAITING
    assert post.attempts == 1
    assert post.next_attempt_at is not None
    assert post.next_attempt_ts > clock.now()


@pytest.mark.parametrize("status", [401, 403])
def test_revoked_token_fails_the_post_without_retrying(
    video: Path, journal: Journal, clock: FakeClock, status: int
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=status, methods={"POST"}, times=5)])
    with uploader(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT)
    assert post.state is PostState.FAILED
    assert str(status) in (post.last_error or "")
    assert clock.sleeps == []


def test_changed_file_is_never_resumed(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        post = up.add(video, ENDPOINT)
        video.write_bytes(video.read_bytes() + b"edited")
        after = up.upload_post(post.post_id)
    assert after.state is PostState.FAILED
    assert "changed since its post began" in (after.last_error or "")
    assert sim.uploads == {}


def test_changed_file_can_start_over(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock, post_options=PostOptions(restart_if_changed=True)) as up:
        post = up.add(video, ENDPOINT)
        video.write_bytes(video.read_bytes() + b"edited")
        after = up.upload_post(post.post_id)
    assert after.state is PostState.CONFIRMED
    assert after.identity.size == 256_006
    assert after.identity.sha256 == digest(video)


def test_missing_file(tmp_path: Path, video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as up:
        with pytest.raises(FileProblemError):
            up.post(tmp_path / "nope.mp4", ENDPOINT)
        assert journal.list() == []  # nothing journaled for a file that is not there
        post = up.add(video, ENDPOINT)
        video.unlink()
        after = up.upload_post(post.post_id)
    assert after.state is PostState.FAILED
    assert "no such file" in (after.last_error or "")


def test_cancel_leaves_the_post_resumable(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, checksum_algorithms=())
    up = uploader(sim, journal, clock)

    def cancel_at_half(p: object) -> None:
        if getattr(p, "acknowledged", 0) >= 128_000:
            up.cancel()

    with up:
        post = up.post(video, ENDPOINT, on_progress=cancel_at_half)
    assert post.state is PostState.WAITING
    assert post.offset >= 128_000
    assert post.upload_url
    with uploader(sim, journal, clock) as again:
        [done] = again.resume_pending()
    assert done.state is PostState.CONFIRMED
    assert done.upload_url == post.upload_url
    assert len(sim.uploads) == 1
    assert done.identity.sha256 == digest(video)  # the skipped prefix was hashed on resume


def test_a_post_held_by_another_worker_is_not_touched(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    with uploader(sim, journal, clock) as first, uploader(sim, journal, clock) as second:
        post = first.add(video, ENDPOINT)
        journal.claim(owner=first.owner, post_id=post.post_id)
        untouched = second.upload_post(post.post_id)
        assert untouched.state is PostState.UPLOADING
        assert untouched.lease_owner == first.owner
        assert sim.requests == []
        # The first worker dies; once its lease expires the post is taken up again.
        clock.advance(PostOptions().lease_s + 1)
        [done] = second.resume_pending()
    assert done.state is PostState.CONFIRMED


async def test_async_post(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    client = httpx.AsyncClient(transport=sim.async_transport(), base_url=BASE)
    async with AsyncUploader(client=client, journal=journal, sleep=clock.asleep,
                             clock=clock.now, chunk_size=CHUNK) as up:  # fmt: skip
        post = await up.post(video, ENDPOINT)
    assert post.state is PostState.CONFIRMED
    assert post.identity.sha256 == digest(video)


def test_each_retry_reaches_the_log_once(
    video: Path, journal: Journal, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry loop logs a retry; the driver does not say the same wait again (the daemon's
    log showed every retry twice)."""
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=500, methods={"PATCH"}, times=2)])
    with caplog.at_level(logging.DEBUG, logger="steadypost"), uploader(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT)
    assert post.state is PostState.CONFIRMED
    waits = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(waits) == 2, waits
    assert all("attempt" in line for line in waits)  # the retry loop's lines, not repeats
