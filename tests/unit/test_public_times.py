"""Times in the public API are timezone-aware UTC datetimes; epoch floats stay exact beside them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from steadypost import Journal, JournalEvent, Post, PostState
from steadypost.journal import make_owner
from steadypost.models import FileIdentity
from steadypost.testing import FakeClock

T0 = 1_800_000_000.123_456_7  # more digits than a datetime holds


def _post(**times: object) -> Post:
    return Post("p", "tus", "https://x.test/files/", "/v.mp4", FileIdentity(1, 1),
                PostState.WAITING, **times)  # type: ignore[arg-type]  # fmt: skip


def test_epoch_seconds_become_aware_utc_datetimes_and_stay_exact() -> None:
    post = _post(next_attempt_at=T0, created_at=T0 - 60, updated_at=T0 - 1)
    assert post.next_attempt_at == datetime.fromtimestamp(T0, tz=timezone.utc)
    assert post.next_attempt_at is not None
    assert post.next_attempt_at.tzinfo is timezone.utc
    assert post.next_attempt_ts == T0  # exactly the float given, not the microsecond
    assert (post.created_ts, post.updated_ts) == (T0 - 60, T0 - 1)
    assert (post.lease_expires_at, post.lease_expires_ts) == (None, None)


def test_an_aware_datetime_is_kept_and_a_naive_one_refused() -> None:
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 12, 1, 18, 0, tzinfo=paris)
    post = _post(next_attempt_at=at)
    assert post.next_attempt_at == at
    assert post.next_attempt_at.tzinfo is timezone.utc
    assert post.next_attempt_ts == at.timestamp()
    with pytest.raises(ValueError, match="timezone-aware"):
        _post(next_attempt_at=datetime(2026, 12, 1, 18, 0))
    with pytest.raises(ValueError, match="datetime or epoch seconds"):
        _post(next_attempt_at="tomorrow")


def test_the_journal_hands_out_datetimes_and_takes_them_back(tmp_path: Path) -> None:
    clock = FakeClock(start=T0)
    with Journal(tmp_path / "j.sqlite3", clock=clock.now) as journal:
        post = journal.add(path=tmp_path / "v.mp4", endpoint="https://x.test/files/",
                           identity=FileIdentity(10, 1))  # fmt: skip
        assert post.created_at == datetime.fromtimestamp(T0, tz=timezone.utc)
        owner = make_owner()
        journal.transition(post.post_id, PostState.UPLOADING, owner=owner)
        later = post.created_at + timedelta(minutes=5)
        waiting = journal.transition(post.post_id, PostState.WAITING, owner=owner,
                                     next_attempt_at=later)  # a datetime, as it was read
        assert waiting.next_attempt_at == later
        [*_, event] = journal.events(post.post_id)
        assert isinstance(event, JournalEvent)
        assert event.at.tzinfo is timezone.utc
        assert event.at_ts == T0
        # A test clock moves to a datetime, and the post is due then, not a microsecond after.
        clock.advance_to(waiting.next_attempt_at)
        assert [p.post_id for p in journal.due()] == [post.post_id]
