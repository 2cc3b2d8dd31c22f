"""Verify before re-posting: every branch against the simulator, on a fake clock."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import httpx
import pytest

from steadypost import AsyncUploader, Journal, PostOptions, PostState, RetryPolicy, Uploader
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.tus.adapters import PostApiPlatform
from steadypost.testing import (
    FakeClock,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    Respond,
    SlowProcessing,
)

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
MIN, HOUR = 60.0, 3600.0






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(hashlib.sha256(b"v").digest() * 3000)
    return path


def post_api() -> PostApiPlatform:
    return PostApiPlatform(
        HeaderPolicy(), publish_url=f"{BASE}/posts", status_url=f"{BASE}/posts/{{post_id}}/status"
    )


def make(sim: PlatformSimulator, journal: Journal, clock: FakeClock, seed: int = 1) -> Uploader:
    return Uploader(
        client=httpx.Client(transport=sim.transport(), base_url=BASE), journal=journal,
        sleep=clock.sleep, clock=clock.now, rng=random.Random(seed), chunk_size=32 * 1024,
        retry=RetryPolicy(max_attempts=3, deadline_s=None),
    )  # fmt: skip


def test_processed_but_answered_500_is_confirmed_at_its_check_and_published_once(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(status=500, on={"publish"})])
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
        assert post.state is PostState.UNCONFIRMED
        assert up.verify_due() == []  # not before its time
        assert post.next_attempt_at is not None
        clock.advance_to(post.next_attempt_at)
        [checked] = up.verify_due()
        assert up.resume_pending() == []
    assert checked.state is PostState.CONFIRMED
    assert sim.published_copies(post.post_id) == 1
    verify_events = [e for e in journal.events(post.post_id) if e.kind == "verify"]
    assert verify_events[-1].data["status"] == "processed"


def test_a_really_lost_publish_is_reposted_exactly_once(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    # A 500 that did NOT publish: the outcome is unknown until the check says "not found".
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=500, path="/posts", times=1)])
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
        assert post.state is PostState.UNCONFIRMED
        assert sim.published_copies(post.post_id) == 0  # never re-published blindly
        clock.advance(30 * MIN)
        [checked] = up.verify_due()
        assert checked.state is PostState.QUEUED
        [done] = up.resume_pending()
        patches = [r for r in sim.requests if r.method == "PATCH"]
        assert done.state is PostState.UNCONFIRMED  # published, now processing
        clock.advance(30 * MIN)
        [final] = up.verify_due()
    assert final.state is PostState.CONFIRMED
    assert sim.published_copies(post.post_id) == 1
    assert len(sim.uploads) == 1
    assert len([r for r in sim.requests if r.method == "PATCH"]) == len(patches)  # no bytes resent


@pytest.mark.parametrize("seed", range(40))
def test_first_check_falls_inside_15_to_30_minutes(
    video: Path, journal: Journal, clock: FakeClock, seed: int
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButTimeout(on={"publish"})])
    with make(sim, journal, clock, seed=seed) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
    assert post.state is PostState.UNCONFIRMED
    ambiguous_at = max(e.at_ts for e in journal.events(post.post_id) if e.kind == "request")
    assert post.next_attempt_at is not None
    assert 15 * MIN <= post.next_attempt_ts - ambiguous_at <= 30 * MIN


def test_rechecks_back_off_then_the_limit_fails_the_post_with_evidence(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[SlowProcessing(seconds=1000 * HOUR)])
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
        checks: list[float] = []
        while post.state is PostState.UNCONFIRMED:
            assert post.next_attempt_at is not None
            clock.advance_to(post.next_attempt_at)
            checks.append(clock.now())
            [post] = up.verify_due()
    gaps = [b - a for a, b in itertools.pairwise(checks)]
    assert gaps[0] == pytest.approx(30 * MIN, rel=0.11)
    assert gaps[1] == pytest.approx(1 * HOUR, rel=0.11)
    assert gaps[2] == pytest.approx(2 * HOUR, rel=0.11)
    assert max(gaps) <= 6 * HOUR * 1.1
    assert post.state is PostState.FAILED
    assert "unresolved" in (post.last_error or "")
    since = post.extra["unconfirmed_since"]
    assert 72 * HOUR <= clock.now() - since <= 72 * HOUR + 6.6 * HOUR
    evidence = [e for e in journal.events(post.post_id) if e.kind == "verify"]
    assert len(evidence) == len(checks)
    assert all(e.data["status"] == "processing" for e in evidence)


def test_a_restarted_process_still_runs_the_check_on_time(
    video: Path, tmp_path: Path, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(on={"publish"})])
    path = tmp_path / "restart.sqlite3"
    with Journal(path, clock=clock.now) as first_journal, make(sim, first_journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
    assert post.next_attempt_at is not None
    # ...the process exits; a new one starts with only the journal to go on.
    with Journal(path, clock=clock.now) as journal, make(sim, journal, clock) as again:
        clock.advance_to(post.next_attempt_ts - 1)
        assert again.verify_due() == []
        clock.advance(1)
        [checked] = again.verify_due()
    assert checked.state is PostState.CONFIRMED
    assert sim.published_copies(post.post_id) == 1


def test_a_platform_ignoring_idempotency_keys_still_gets_no_duplicate(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(
        clock=clock, ignore_idempotency=True, faults=[ProcessedButTimeout(on={"publish"})]
    )
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
        clock.advance(31 * MIN)
        up.verify_due()
        up.resume_pending()
        clock.advance(31 * MIN)
        up.verify_due()
    assert journal.get(post.post_id).state is PostState.CONFIRMED
    assert len(sim.published) == 1


@pytest.mark.parametrize(("retryable", "state"), [(True, "queued"), (False, "failed")])
def test_failed_posts(
    video: Path, journal: Journal, clock: FakeClock, retryable: bool, state: str
) -> None:
    sim = PlatformSimulator(
        clock=clock, faults=[RejectMedia(reason="codec", retryable=retryable, times=1)]
    )
    with make(sim, journal, clock) as up:
        up.post(video, ENDPOINT, platform=post_api())
        clock.advance(31 * MIN)
        [checked] = up.verify_due()
    assert checked.state.value == state
    assert "codec" in (checked.last_error or "")


def test_plain_tus_unconfirmed_post_is_confirmed_by_head(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(
        clock=clock,
        faults=[
            ProcessedButTimeout(on={"final_patch"}),
            Respond(status=503, methods={"HEAD"}, times=3),
        ],
    )
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT)
        assert post.state is PostState.UNCONFIRMED
        clock.advance(30 * MIN)
        [checked] = up.verify_due(all=True)
    assert checked.state is PostState.CONFIRMED
    assert len(sim.uploads) == 1


def test_a_check_that_cannot_be_made_changes_only_the_next_time(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(on={"publish"})])
    with make(sim, journal, clock) as up:
        up.post(video, ENDPOINT, platform=post_api())
        sim.faults.add(Respond(status=503, path="/posts", times=10))
        clock.advance(30 * MIN)
        [same] = up.verify_due()
        assert same.state is PostState.UNCONFIRMED
        assert same.next_attempt_at is not None
        assert same.next_attempt_ts > clock.now()
        assert same.extra.get("checks", 0) == 0
        sim.faults.clear()
        clock.advance_to(same.next_attempt_at)
        [done] = up.verify_due()
    assert done.state is PostState.CONFIRMED


def test_html_instead_of_json_is_a_failed_check_not_a_repost(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(on={"publish"})])
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT, platform=post_api())
        sim.faults.add(Respond(status=200, html=True, path="/posts", times=1))
        clock.advance(30 * MIN)
        [same] = up.verify_due()
    assert same.state is PostState.UNCONFIRMED
    assert sim.published_copies(post.post_id) == 1
    notes = [e.data for e in journal.events(post.post_id) if e.kind == "verify"]
    assert "HTML" in notes[-1]["error"]


def test_cancel_post_deletes_the_server_side_upload(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=503, methods={"PATCH"}, times=99)])
    with make(sim, journal, clock) as up:
        post = up.post(video, ENDPOINT)
        assert post.state is PostState.WAITING
        cancelled = up.cancel_post(post.post_id)
    assert cancelled.state is PostState.CANCELLED
    [info] = sim.uploads.values()
    assert info.gone == "terminated"


async def test_async_verify(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(on={"publish"})])
    client = httpx.AsyncClient(transport=sim.async_transport(), base_url=BASE)
    async with AsyncUploader(
        client=client, journal=journal, sleep=clock.asleep, clock=clock.now,
        post_options=PostOptions(verify_window_s=(60.0, 60.0)),
    ) as up:  # fmt: skip
        post = await up.post(video, ENDPOINT, platform=post_api())
        assert post.next_attempt_ts == pytest.approx(clock.now() + 60, abs=1)
        clock.advance(60)
        [checked] = await up.verify_due()
    assert checked.state is PostState.CONFIRMED
