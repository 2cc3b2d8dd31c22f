"""The per-host guard with real uploaders, a real journal and the platform simulator."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import httpx
import pytest

from steadypost import (
    AsyncUploader,
    HostRegistry,
    HostUnavailableError,
    Journal,
    PostState,
    RetryPolicy,
    Uploader,
)
from steadypost.hosts import BREAKER_KIND, BreakerPhase, BreakerState
from steadypost.testing import FakeClock, Outage, PlatformSimulator

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
ORIGIN = "https://platform.test:443"
CHUNK = 64 * 1024
OUTAGE_S = 30 * 60.0






@pytest.fixture
def videos(tmp_path: Path) -> list[Path]:
    paths = []
    for n in range(20):
        path = tmp_path / f"clip{n:02}.mp4"
        path.write_bytes(hashlib.sha256(f"seed{n}".encode()).digest() * 3000)  # 96,000 bytes
        paths.append(path)
    return paths


def uploader(sim: PlatformSimulator, journal: Journal, clock: FakeClock, seed: int = 1,
             **kw: object) -> Uploader:  # fmt: skip
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    return Uploader(
        client=client, journal=journal, sleep=clock.sleep, clock=clock.now, chunk_size=CHUNK,
        rng=random.Random(seed), hosts=HostRegistry(rng=random.Random(seed)),
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_twenty_posts_to_a_down_host_wait_and_then_all_go_through(
    videos: list[Path], journal: Journal, clock: FakeClock
) -> None:
    start = clock.now()
    end = start + OUTAGE_S
    sim = PlatformSimulator(clock=clock, faults=[Outage(start, end)])
    with uploader(sim, journal, clock) as up:
        for video in videos:
            up.add(video, ENDPOINT)
        posts = up.resume_pending()
        assert [p.state for p in posts] == [PostState.WAITING] * 20
        assert len(sim.requests) == 5  # the breaker opened after five failures
        breaker = BreakerState.from_json(journal.get_host_state(ORIGIN, BREAKER_KIND))
        assert breaker.phase is BreakerPhase.OPEN
        now = clock.now()
        for post in posts:
            assert post.next_attempt_at is not None
            # every post waits for the host's next probe, not for its own backoff
            assert post.next_attempt_ts == pytest.approx(breaker.open_until, abs=1.0)
            assert now < post.next_attempt_ts <= now + 30
        assert all("circuit open" in (p.last_error or "") for p in posts[1:])

        # Through the outage, the whole queue sends one probe per breaker period.
        rounds = 0
        while clock.now() < end:
            due = journal.next_due_at()
            assert due is not None
            clock.advance_to(due)
            before = len(sim.requests)
            done = up.resume_pending()
            rounds += 1
            if clock.now() < end:
                assert len(sim.requests) - before <= 1
                assert all(p.state is PostState.WAITING for p in done)
        assert rounds < 20  # open periods grow: 15-30 s, 30-60 s, ... up to 4 min
        during = [r for r in sim.requests if r.at < end]
        assert len(during) <= 5 + rounds

        # After the outage: everything goes through, exactly once each.
        while journal.counts()[PostState.CONFIRMED] < 20:
            due = journal.next_due_at()
            assert due is not None
            assert due < end + 600
            clock.advance_to(due)
            up.resume_pending()
    assert len(sim.uploads) == 20
    assert all(info.completed for info in sim.uploads.values())
    assert BreakerState.from_json(journal.get_host_state(ORIGIN, BREAKER_KIND)) == BreakerState()


async def test_async_uploader_shares_the_same_guard(
    videos: list[Path], journal: Journal, clock: FakeClock
) -> None:
    start = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(start, start + 600, mode="refuse")])
    client = httpx.AsyncClient(transport=sim.async_transport(), base_url=BASE)
    async with AsyncUploader(
        client=client, journal=journal, sleep=clock.asleep, clock=clock.now, chunk_size=CHUNK,
        rng=random.Random(5), hosts=HostRegistry(rng=random.Random(5)),
    ) as up:  # fmt: skip
        # A platform known to this journal (it answered before), now refusing connections:
        # an outage. (Never answered at all, refusing is a wrong endpoint: a ConfigurationError.)
        up.hosts.guard(journal).mark_answered(ENDPOINT, start)
        for video in videos[:5]:
            up.add(video, ENDPOINT)
        posts = await up.resume_pending()
        assert [p.state for p in posts] == [PostState.WAITING] * 5
        assert len(sim.requests) == 5
        clock.advance_to(start + 600)
        while journal.counts()[PostState.CONFIRMED] < 5:
            due = journal.next_due_at()
            assert due is not None
            clock.advance_to(due)
            await up.resume_pending()
    assert len(sim.uploads) == 5


def test_the_cli_waits_for_an_outage_the_daemon_has_seen(
    tmp_path: Path, videos: list[Path], clock: FakeClock
) -> None:
    start = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(start, start + OUTAGE_S)])
    path = tmp_path / "shared.sqlite3"
    # Two processes: each its own journal connection and its own in-memory registry.
    with Journal(path, clock=clock.now) as daemon_journal, Journal(
        path, clock=clock.now
    ) as cli_journal:
        with uploader(sim, daemon_journal, clock, seed=1) as daemon:
            assert daemon.post(videos[0], ENDPOINT).state is PostState.WAITING
        seen = len(sim.requests)
        assert seen == 5
        with uploader(sim, cli_journal, clock, seed=2) as cli:
            post = cli.post(videos[1], ENDPOINT)
        assert len(sim.requests) == seen  # not a single request from the CLI
        assert post.state is PostState.WAITING
        assert "platform.test is recovering: circuit open, next probe in" in (
            post.last_error or ""
        )
        stored = BreakerState.from_json(cli_journal.get_host_state(ORIGIN, BREAKER_KIND))
        assert post.next_attempt_ts == pytest.approx(stored.open_until, abs=1.0)


def test_retry_after_holds_back_every_post_to_the_host(
    videos: list[Path], journal: Journal, clock: FakeClock
) -> None:
    start = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(start, start + 3600, retry_after=900)])
    with uploader(sim, journal, clock, retry=RetryPolicy(deadline_s=600)) as up:
        for video in videos[:3]:
            up.add(video, ENDPOINT)
        first, *others = up.resume_pending()
    assert len(sim.requests) == 1  # one 503 with Retry-After: 900, and nothing more
    assert first.state is PostState.WAITING
    for post in others:
        assert post.state is PostState.WAITING
        assert post.next_attempt_ts == pytest.approx(start + 900, abs=1.0)
        assert "Retry-After" in (post.last_error or "")


def test_upload_without_a_journal_raises_host_unavailable_without_sending(
    videos: list[Path], journal: Journal, clock: FakeClock
) -> None:
    start = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[Outage(start, start + OUTAGE_S)])
    registry = HostRegistry(rng=random.Random(1))
    with uploader(sim, journal, clock) as up:
        up._hosts = registry
        assert up.post(videos[0], ENDPOINT).state is PostState.WAITING
        sent = len(sim.requests)
        with pytest.raises(HostUnavailableError) as info:
            up.upload(videos[1], ENDPOINT)
    assert len(sim.requests) == sent
    assert info.value.retry_after > 0
