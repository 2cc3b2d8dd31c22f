"""TikTok's rules as pure functions: chunk planning, status mapping, rate-limit slots, registry."""

from __future__ import annotations

import threading

import pytest

from steadypost import FileProblemError, Journal, JournalError
from steadypost.flow import Acquire
from steadypost.hosts.ratelimit import LocalRateLimiter, SharedRateLimiter, take_slot
from steadypost.platforms import available, platform_for
from steadypost.platforms.base import CheckStatus
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.tiktok import TikTokPlatform
from steadypost.platforms.tiktok.api import status_result, token_key
from steadypost.platforms.tiktok.chunks import (
    UnsupportedFileError,
    choose_chunk_size,
    content_type_for,
    plan_chunks,
)
from steadypost.platforms.vimeo import VimeoPlatform

MB = 1_000_000


# --- chunk planning (TikTok's media transfer guide) -------------------------------------


def test_the_documented_example_is_five_chunks_the_last_holding_the_trailing_bytes() -> None:
    plan = plan_chunks(50_000_123, 10_000_000)
    assert (plan.chunk_size, plan.total_chunk_count) == (10_000_000, 5)
    ranges = [plan.chunk(i) for i in range(5)]
    assert [c.length for c in ranges] == [10_000_000] * 4 + [10_000_123]
    assert ranges[0].content_range(50_000_123) == "bytes 0-9999999/50000123"
    assert ranges[4].content_range(50_000_123) == "bytes 40000000-50000122/50000123"
    assert plan.source_info() == {
        "source": "FILE_UPLOAD", "video_size": 50_000_123,
        "chunk_size": 10_000_000, "total_chunk_count": 5,
    }  # fmt: skip


@pytest.mark.parametrize("size", [1, 1_000_000, 4_999_999, 5_000_000, 5 * 1024 * 1024 - 1])
def test_a_file_under_5_mb_goes_whole(size: int) -> None:
    plan = plan_chunks(size, 10_000_000)
    assert (plan.chunk_size, plan.total_chunk_count) == (size, 1)
    assert plan.chunk(0).length == size


def test_a_file_over_64_mb_must_be_chunked() -> None:
    with pytest.raises(UnsupportedFileError, match="several chunks"):
        plan_chunks(100 * MB, 100 * MB)
    with pytest.raises(UnsupportedFileError, match="several chunks"):
        plan_chunks(70 * MB, 64 * MB)  # floor(70/64) = 1 chunk: not allowed over 64 MB
    size = choose_chunk_size(70 * MB, 64 * MB)
    plan = plan_chunks(70 * MB, size)
    assert plan.total_chunk_count == 2
    assert plan.chunk(1).length <= 128 * MB


def test_more_than_1000_chunks_is_rejected_with_the_smallest_chunk_that_fits() -> None:
    with pytest.raises(UnsupportedFileError, match="at most 1,000") as caught:
        plan_chunks(6_000_000_000, 5_500_000)
    assert isinstance(caught.value, FileProblemError)  # the post fails, with this reason
    assert "5,994,006" in str(caught.value)
    fitted = choose_chunk_size(6_000_000_000, 5_500_000)
    assert plan_chunks(6_000_000_000, fitted).total_chunk_count <= 1000


@pytest.mark.parametrize("chunk", [1_000_000, 5_000_000, 64 * MB + 1])
def test_chunk_sizes_outside_5_to_64_mb_are_rejected(chunk: int) -> None:
    with pytest.raises(UnsupportedFileError, match="outside TikTok's limits"):
        plan_chunks(200 * MB, chunk)


@pytest.mark.parametrize("size", [5_300_000, 12_000_000, 64 * MB, 64 * MB + 1, 4_000_000_000])
def test_chosen_chunk_sizes_always_make_a_valid_plan(size: int) -> None:
    for preferred in (1, 5 * MB, 10 * MB, 64 * MB, 1_000 * MB):
        plan = plan_chunks(size, choose_chunk_size(size, preferred))
        last = plan.chunk(plan.total_chunk_count - 1)
        assert last.last == size - 1
        assert 1 <= plan.total_chunk_count <= 1000
        assert last.length <= 128 * MB


def test_empty_files_and_unknown_types_are_refused() -> None:
    with pytest.raises(UnsupportedFileError, match="empty"):
        plan_chunks(0, 10 * MB)
    assert content_type_for("a/b/Clip.MOV") == "video/quicktime"
    assert content_type_for("x.webm") == "video/webm"
    with pytest.raises(UnsupportedFileError, match="MP4, MOV"):
        content_type_for("clip.avi")


# --- status/fetch answers ---------------------------------------------------------------


DONE, FAILED, BUSY = CheckStatus.PROCESSED, CheckStatus.FAILED, CheckStatus.PROCESSING


@pytest.mark.parametrize(
    ("status", "reason", "expected", "retryable"),
    [
        ("PUBLISH_COMPLETE", None, DONE, False),
        ("SEND_TO_USER_INBOX", None, DONE, False),
        ("PROCESSING_DOWNLOAD", None, BUSY, False),
        ("PROCESSING_UPLOAD", None, BUSY, False),
        ("FAILED", "internal", FAILED, True),
        ("FAILED", "video_pull_failed", FAILED, True),
        ("FAILED", "file_format_check_failed", FAILED, False),
        ("FAILED", "duration_check_failed", FAILED, False),
        ("FAILED", "picture_size_check_failed", FAILED, False),
        ("FAILED", "frame_rate_check_failed", FAILED, False),
        ("FAILED", "spam_risk_too_many_posts", FAILED, False),
        ("FAILED", "something_new", FAILED, False),
    ],
)
def test_status_values_map_to_check_results(
    status: str, reason: str | None, expected: CheckStatus, retryable: bool
) -> None:
    data = {"status": status, "uploaded_bytes": 100, "fail_reason": reason}
    result = status_result(data, video_size=100, all_acknowledged=True, url_alive=True)
    assert (result.status, result.retryable) == (expected, retryable)
    if reason:
        assert result.reason == reason


def test_missing_bytes_are_not_processed_only_when_the_journal_lacks_an_acknowledgement() -> None:
    partial = {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 40}
    lagging = status_result(partial, video_size=100, all_acknowledged=True, url_alive=True)
    assert lagging.status is CheckStatus.PROCESSING
    lost = status_result(partial, video_size=100, all_acknowledged=False, url_alive=True)
    assert lost.status is CheckStatus.NOT_PROCESSED
    unknown = {"status": "PROCESSING_UPLOAD"}
    assert status_result(unknown, video_size=100, all_acknowledged=False,
                         url_alive=True).status is CheckStatus.PROCESSING  # fmt: skip
    assert status_result(unknown, video_size=100, all_acknowledged=False,
                         url_alive=False).status is CheckStatus.NOT_PROCESSED  # fmt: skip
    # Every byte arrived (only the last answer was lost): processing, whatever the URL's age.
    held = {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 100}
    assert status_result(held, video_size=100, all_acknowledged=False,
                         url_alive=False).status is CheckStatus.PROCESSING  # fmt: skip


# --- rate-limit slots -------------------------------------------------------------------


def test_take_slot_is_a_sliding_window() -> None:
    history: list[float] = []
    for t in range(6):
        history, wait = take_slot(history, now=100.0 + t, limit=6, window_s=60, margin_s=0)
        assert wait == 0.0
    history, wait = take_slot(history, now=110.0, limit=6, window_s=60, margin_s=0)
    assert wait == pytest.approx(50.0)  # the oldest grant (t=100) leaves at 160
    history, wait = take_slot(history, now=160.0, limit=6, window_s=60, margin_s=0)
    assert wait == 0.0
    assert len(history) == 6


def _acquire(now: float, key: str = "tiktok-rate:abc") -> Acquire:
    return Acquire("open.tiktokapis.com", key, "init", 6, 60.0, now)


def test_local_limiter_keeps_tokens_apart() -> None:
    limiter = LocalRateLimiter(margin_s=0)
    assert [limiter.acquire(_acquire(0.0)) for _ in range(6)] == [0.0] * 6
    assert limiter.acquire(_acquire(1.0)) == pytest.approx(59.0)
    assert limiter.acquire(_acquire(1.0, key="tiktok-rate:other")) == 0.0


def test_shared_limiter_is_shared_by_two_journal_connections(journal_target: str) -> None:
    path = journal_target
    with Journal(path) as cli, Journal(path) as daemon:
        first, second = SharedRateLimiter(lambda: cli), SharedRateLimiter(lambda: daemon)
        waits = [(first if i % 2 else second).acquire(_acquire(10.0 + i)) for i in range(6)]
        assert waits == [0.0] * 6
        assert second.acquire(_acquire(20.0)) > 49.0
        stored = cli.get_host_state("open.tiktokapis.com", "tiktok-rate:abc")
    assert stored is not None
    assert len(stored["init"]) == 6


def test_a_fleet_asking_at_once_gets_no_more_slots_than_the_limit(journal_target: str) -> None:
    """Ten processes' limiters, one journal, the same instant: six grants (6 a minute), no more."""
    journals = [Journal(journal_target) for _ in range(10)]
    try:
        barrier = threading.Barrier(len(journals))
        waits: list[float] = []

        def ask(journal: Journal) -> None:
            barrier.wait()
            waits.append(SharedRateLimiter(lambda: journal).acquire(_acquire(10.0)))

        threads = [threading.Thread(target=ask, args=(j,)) for j in journals]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(waits)[:6] == [0.0] * 6
        assert all(w > 59.0 for w in sorted(waits)[6:])
    finally:
        for j in journals:
            j.close()


def test_rate_keys_hash_the_token() -> None:
    key = token_key(HeaderPolicy({"Authorization": "Bearer secret-token"}))
    assert key is not None
    assert key.startswith("tiktok-rate:")
    assert "secret" not in key
    assert token_key(HeaderPolicy()) is None


# --- the registry -----------------------------------------------------------------------


def test_available_lists_every_platform_with_its_sources() -> None:
    infos = {info.name: info for info in available()}
    assert list(infos) == ["tus", "post-api", "tiktok", "vimeo", "youtube", "instagram", "x"]
    assert infos["tiktok"].default_endpoint == "https://open.tiktokapis.com"
    assert infos["tiktok"].needs_token
    assert "secondary" in infos["tiktok"].sources
    assert infos["vimeo"].default_endpoint == "https://api.vimeo.com"
    assert "mode" in infos["tiktok"].options
    for name in ("youtube", "instagram", "x"):  # each says what is documented, what assumed
        assert infos[name].needs_token
        assert "assumed" in infos[name].sources
    assert "ig_user_id" in infos["instagram"].options


def test_adapters_are_rebuilt_from_their_journaled_config() -> None:
    original = TikTokPlatform(mode="inbox", chunk_size=20 * MB, account="brand")
    rebuilt = platform_for("tiktok", dict(original.config()))
    assert isinstance(rebuilt, TikTokPlatform)
    assert rebuilt.options == original.options
    assert isinstance(platform_for("vimeo", {"account": "a"}), VimeoPlatform)
    assert "token" not in str(dict(original.config())).lower()
    with pytest.raises(JournalError, match="unknown platform"):
        platform_for("myspace", {})
    with pytest.raises(JournalError, match="unusable config"):
        platform_for("tiktok", {"mode": "direct", "chunk_size": "zero"})


@pytest.mark.parametrize("mode", ["Inbox", "draft", ""])
def test_a_journaled_mode_that_is_not_known_is_refused_not_published_directly(mode: str) -> None:
    # "direct" makes the video public; an unknown mode must never fall back to it.
    with pytest.raises(JournalError, match="mode must be 'direct' or 'inbox'"):
        platform_for("tiktok", {"mode": mode})
