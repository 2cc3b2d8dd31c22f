"""One video to several platforms: a post per platform, grouped, side by side.

Each platform runs on its own simulator server (its own origin, so its own
circuit breaker), and each gets its own token from the token provider.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_support import sha
from steadypost import (
    AsyncUploader,
    Journal,
    PostGroup,
    PostState,
    RetryPolicy,
    Target,
    TokenRequest,
    Uploader,
)
from steadypost.platforms.instagram import InstagramPlatform
from steadypost.platforms.tiktok import TikTokPlatform
from steadypost.platforms.youtube import YouTubePlatform
from steadypost.testing import (
    FakeClock,
    InstagramConfig,
    Outage,
    PlatformSimulator,
    SimulatorServer,
    TikTokConfig,
    YouTubeConfig,
)

KiB = 1024
TOKENS = {"tiktok": "act.tiktok-token", "youtube": "ya29.youtube-token",
          "instagram": "IGQ-instagram-token"}  # fmt: skip
IG = "17841400000000001"


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(random.Random(21).randbytes(3 * 256 * KiB + 999))
    return path


@pytest.fixture
def sims(clock: FakeClock) -> dict[str, PlatformSimulator]:
    return {
        "tiktok": PlatformSimulator(clock=clock, tiktok=TikTokConfig(
            tokens=frozenset({TOKENS["tiktok"]}))),
        "youtube": PlatformSimulator(clock=clock, youtube=YouTubeConfig(
            tokens=frozenset({TOKENS["youtube"]}))),
        "instagram": PlatformSimulator(clock=clock, instagram=InstagramConfig(
            tokens=frozenset({TOKENS["instagram"]}), processing_s=30)),
    }  # fmt: skip


@pytest.fixture
def servers(sims: dict[str, PlatformSimulator]) -> Iterator[dict[str, SimulatorServer]]:
    running = {name: SimulatorServer(sim) for name, sim in sims.items()}
    for server in running.values():
        server.__enter__()
    try:
        yield running
    finally:
        for server in running.values():
            server.__exit__(None, None, None)


def targets(servers: dict[str, SimulatorServer]) -> list[Target]:
    return [
        Target(TikTokPlatform(chunk_size=256 * KiB), servers["tiktok"].url),
        Target(YouTubePlatform(chunk_size=256 * KiB), servers["youtube"].url),
        Target(InstagramPlatform(ig_user_id=IG), servers["instagram"].url),
    ]


def provider(request: TokenRequest) -> str:
    return TOKENS[request.platform]


def uploader(journal: Journal, clock: FakeClock, **options: object) -> Uploader:
    options.setdefault("retry", RetryPolicy(max_attempts=6, deadline_s=None))
    return Uploader(journal=journal, sleep=clock.sleep, clock=clock.now, rng=random.Random(5),
                    token_provider=provider, **options)  # type: ignore[arg-type]  # fmt: skip


def stored(sims: dict[str, PlatformSimulator]) -> dict[str, list[str]]:
    """The SHA-256 of each video each platform published."""
    return {
        "tiktok": [p.sha256 for p in sims["tiktok"].tiktok.published()],
        "youtube": [v.sha256 for v in sims["youtube"].youtube.videos()],
        "instagram": [r.sha256 for r in sims["instagram"].instagram.published()],
    }


def settle(up: Uploader, group: PostGroup, clock: FakeClock) -> list[PostState]:
    """Run checks and retries as their times come until nothing is left to do."""
    for _ in range(50):
        posts = [up.journal.get(p.post_id) for p in group]
        if all(p.state.finished for p in posts):
            return [p.state for p in posts]
        due = [p.next_attempt_ts for p in posts if p.next_attempt_ts is not None]
        clock.advance_to(max(clock.now(), min(due)))
        up.verify_due()
        up.resume_pending()
    raise AssertionError(f"not settled: {[(p.platform, p.state) for p in posts]}")


def test_one_video_goes_to_three_platforms_as_three_grouped_posts(
    video: Path, journal: Journal, clock: FakeClock, sims: dict[str, PlatformSimulator],
    servers: dict[str, SimulatorServer],
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        group = up.post(video, platforms=targets(servers), metadata={"title": "Sunset"})
        states = settle(up, group, clock)
    assert isinstance(group, PostGroup)
    assert len(group) == 3
    assert [p.platform for p in group] == ["tiktok", "youtube", "instagram"]
    assert states == [PostState.CONFIRMED] * 3
    assert len({p.post_id for p in group}) == 3
    assert {p.group for p in journal.list()} == {group.group_id}
    assert stored(sims) == {name: [sha(video)] for name in TOKENS}
    for name, sim in sims.items():  # each platform saw only its own token
        seen = {r.headers.get("authorization", "") for r in sim.requests} - {""}
        assert seen, name
        assert all(TOKENS[name] in value for value in seen), (name, seen)


def test_one_platform_down_does_not_hold_back_or_duplicate_the_others(
    video: Path, journal: Journal, clock: FakeClock, sims: dict[str, PlatformSimulator],
    servers: dict[str, SimulatorServer],
) -> None:  # fmt: skip
    start = clock.now()
    sims["tiktok"].faults.add(Outage(start, start + 6 * 3600, retry_after=60))
    with uploader(journal, clock) as up:
        group = up.post(video, platforms=targets(servers))
        first = group.by_platform
        assert first["tiktok"].state is PostState.WAITING
        assert first["youtube"].state is PostState.CONFIRMED
        # The same command again: nothing is sent twice, TikTok still waits for its host.
        again = up.post(video, platforms=targets(servers))
        assert [p.post_id for p in again] == [p.post_id for p in group]
        assert again.group_id == group.group_id
        youtube_requests = len(sims["youtube"].requests)
        clock.advance(6 * 3600)
        states = settle(up, group, clock)
    assert states == [PostState.CONFIRMED] * 3
    assert len(sims["youtube"].requests) - youtube_requests <= 2  # at most its checks
    assert stored(sims) == {name: [sha(video)] for name in TOKENS}


def test_a_group_of_one_video_already_posted_to_one_platform_joins_that_post(
    video: Path, journal: Journal, clock: FakeClock, sims: dict[str, PlatformSimulator],
    servers: dict[str, SimulatorServer],
) -> None:  # fmt: skip
    with uploader(journal, clock) as up:
        alone = up.post(video, servers["youtube"].url, platform=YouTubePlatform(
            chunk_size=256 * KiB))  # fmt: skip
        group = up.post(video, platforms=targets(servers))
        settle(up, group, clock)
    assert group.by_platform["youtube"].post_id == alone.post_id
    assert stored(sims)["youtube"] == [sha(video)]


def test_async_uploader_posts_a_group_side_by_side(
    video: Path, journal: Journal, clock: FakeClock, sims: dict[str, PlatformSimulator],
    servers: dict[str, SimulatorServer],
) -> None:  # fmt: skip
    async def main() -> PostGroup:
        async with AsyncUploader(journal=journal, sleep=clock.asleep, clock=clock.now,
                                 rng=random.Random(5), token_provider=provider) as up:  # fmt: skip
            return await up.post(video, platforms=targets(servers))

    group = asyncio.run(main())
    with uploader(journal, clock) as up:
        states = settle(up, group, clock)
    assert states == [PostState.CONFIRMED] * 3
    assert stored(sims) == {name: [sha(video)] for name in TOKENS}


def test_bad_group_arguments_are_refused_before_anything_is_journaled(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    with uploader(journal, clock) as up:
        with pytest.raises(ValueError, match="platforms is empty"):
            up.post(video, platforms=[])
        with pytest.raises(ValueError, match="no default endpoint"):
            up.post(video, platforms=[Target()])
        with pytest.raises(ValueError, match="replaces endpoint"):
            up.post(video, "http://127.0.0.1:9/files/", platforms=[Target()])  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="needs an endpoint"):
            up.post(video)  # type: ignore[call-overload]
    assert journal.list() == []


def test_a_cancelled_group_task_releases_every_post_resumable(
    video: Path, journal: Journal, clock: FakeClock, sims: dict[str, PlatformSimulator],
    servers: dict[str, SimulatorServer],
) -> None:  # fmt: skip
    for sim in sims.values():  # every platform busy: each post backs off
        sim.faults.add(Outage(clock.now(), clock.now() + 3600, retry_after=30))

    async def main() -> None:
        async def slow_sleep(seconds: float) -> None:
            await asyncio.sleep(3600)  # a wait that is still going on when the task is cancelled

        async with AsyncUploader(journal=journal, sleep=slow_sleep, clock=clock.now,
                                 rng=random.Random(5), token_provider=provider) as up:  # fmt: skip
            task = asyncio.ensure_future(up.post(video, platforms=targets(servers)))
            for _ in range(200):
                await asyncio.sleep(0.01)
                if sum(len(s.requests) for s in sims.values()) >= 3:
                    break
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not up.cancelled()  # the uploader goes on

    asyncio.run(main())
    posts = journal.list()
    assert len(posts) == 3
    assert all(p.state is PostState.WAITING and p.lease_owner is None for p in posts), posts
