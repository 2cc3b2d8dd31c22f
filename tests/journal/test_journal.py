"""The journal's post API: add/get/list, the state machine, leases, scheduling, purge."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from journals import raw_error_types, raw_execute
from steadypost import paths
from steadypost.errors import IllegalTransitionError, JournalError, LeaseHeldError
from steadypost.journal import (
    DEFAULT_LEASE_S,
    DEFAULT_RETENTION_S,
    Journal,
    PostExistsError,
    PostNotFoundError,
)
from steadypost.models import TRANSITIONS, FileIdentity, Post, PostState

S = PostState
T0 = 1_700_000_000.0
SHA = "ab" * 32


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(journal_target: str, clock: FakeClock) -> Iterator[Journal]:
    with Journal(journal_target, clock=clock) as j:
        yield j


_videos = itertools.count()


def add(journal: Journal, **kw: Any) -> Post:
    """A post of another video each time (one file would join its one post)."""
    n = next(_videos)
    kw.setdefault("path", f"video-{n}.mp4")
    kw.setdefault("endpoint", "https://uploads.example/files/")
    kw.setdefault("identity", FileIdentity(size=1000, mtime_ns=123 + n))
    return journal.add(**kw)


def state_kinds(journal: Journal, post_id: str) -> list[tuple[Any, Any]]:
    return [(e.data["from"], e.data["to"]) for e in journal.events(post_id) if e.kind == "state"]


# --- add / get / list / events -------------------------------------------------------------


def test_add_journals_a_queued_post_with_its_creation_event(
    journal: Journal, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    post = add(
        journal,
        path="video.mp4",
        identity=FileIdentity(size=1000, mtime_ns=-5, sha256=SHA.upper()),
        metadata={"caption": "hello"},
        platform="vimeo",
        extra={"nested": {"list": [1, 2]}},
    )
    assert post.state is S.QUEUED
    assert post.path == str(tmp_path / "video.mp4")
    assert post.identity == FileIdentity(size=1000, mtime_ns=-5, sha256=SHA)
    assert post.platform == "vimeo"
    assert dict(post.metadata) == {"caption": "hello"}
    assert post.extra["nested"]["list"] == (1, 2)
    assert post.created_ts == post.updated_ts == T0
    assert post.created_at == datetime.fromtimestamp(T0, tz=timezone.utc)  # aware, UTC
    assert (post.offset, post.attempts, post.upload_url, post.lease_owner) == (0, 0, None, None)
    assert len(post.post_id) == 26
    assert journal.get(post.post_id) == post
    [event] = journal.events(post.post_id)
    assert (event.kind, event.at_ts) == ("state", T0)
    assert dict(event.data) == {"from": None, "to": "queued"}
    assert event.at.tzinfo is timezone.utc
    with pytest.raises(TypeError):
        post.metadata["caption"] = "changed"  # type: ignore[index]


def test_add_with_own_id_is_idempotent_key(journal: Journal) -> None:
    add(journal, post_id="0b7b3c1e-1d1f-4c4b-9b1e-2a3f4c5d6e7f")
    with pytest.raises(PostExistsError):
        add(journal, post_id="0b7b3c1e-1d1f-4c4b-9b1e-2a3f4c5d6e7f")
    assert len(journal.list()) == 1


@pytest.mark.parametrize(
    "kw",
    [
        {"post_id": ""},
        {"post_id": " padded "},
        {"metadata": {"n": 1}},
        {"endpoint": ""},
        {"identity": FileIdentity(size=-1, mtime_ns=0)},
        {"identity": FileIdentity(size=1, mtime_ns=0, sha256="nothex")},
        {"extra": {"x": float("nan")}},
        {"extra": {"x": object()}},
        {"extra": ["not", "an", "object"]},
    ],
)
def test_add_rejects_bad_values_and_writes_nothing(journal: Journal, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|JSON|mapping"):
        add(journal, **kw)
    assert journal.list() == []


def test_unknown_post_is_post_not_found(journal: Journal) -> None:
    for call in (
        lambda: journal.get("nope"),
        lambda: journal.events("nope"),
        lambda: journal.record("nope", "note", {}),
        lambda: journal.transition("nope", S.CANCELLED),
        lambda: journal.claim(owner="o", post_id="nope"),
    ):
        with pytest.raises(PostNotFoundError) as info:
            call()
        assert isinstance(info.value, JournalError)


def test_list_orders_by_creation_and_filters(journal: Journal, clock: FakeClock) -> None:
    posts = []
    for _ in range(4):
        posts.append(add(journal))
        clock.advance(1)
    journal.transition(posts[1].post_id, S.CANCELLED)
    journal.transition(posts[2].post_id, S.WAITING)
    ids = [p.post_id for p in posts]
    assert [p.post_id for p in journal.list()] == ids
    assert [p.post_id for p in journal.list(limit=2)] == ids[:2]
    assert [p.post_id for p in journal.list(state=S.QUEUED)] == [ids[0], ids[3]]
    assert [p.post_id for p in journal.list(state=[S.WAITING, S.CANCELLED])] == ids[1:3]
    assert journal.list(state=[]) == []
    with pytest.raises(ValueError, match="limit"):
        journal.list(limit=-1)


def test_counts_every_state(journal: Journal) -> None:
    a, _b = add(journal), add(journal)
    journal.transition(a.post_id, S.FAILED, last_error="rejected")
    counts = journal.counts()
    assert set(counts) == set(PostState)
    assert (counts[S.QUEUED], counts[S.FAILED], counts[S.CONFIRMED]) == (1, 1, 0)


# --- the state machine -------------------------------------------------------------------

OWNER = "host:1:aa"


def post_in(journal: Journal, state: PostState) -> Post:
    """A post driven to ``state`` through legal moves (uploading leased to OWNER)."""
    post = add(journal)
    pid = post.post_id
    if state is S.QUEUED:
        return post
    if state in (S.WAITING, S.CANCELLED, S.FAILED):
        return journal.transition(pid, state)
    journal.claim(owner=OWNER, post_id=pid)
    if state is S.UPLOADING:
        return journal.get(pid)
    return journal.transition(pid, state, owner=OWNER)


LEGAL = sorted(
    [(src, dst) for src, dsts in TRANSITIONS.items() for dst in dsts]
    + [(s, s) for s in PostState if not s.finished],
    key=lambda pair: (pair[0].value, pair[1].value),
)
ILLEGAL = [
    (src, dst)
    for src in PostState
    for dst in PostState
    if (src, dst) not in LEGAL
]


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_every_legal_transition(
    journal: Journal, clock: FakeClock, src: PostState, dst: PostState
) -> None:
    post = post_in(journal, src)
    clock.advance(10)
    owner = OWNER if S.UPLOADING in (src, dst) else None
    moved = journal.transition(post.post_id, dst, owner=owner, event={"why": "test"})
    assert moved.state is dst
    assert moved.updated_ts == clock.now
    if dst is S.UPLOADING:
        assert moved.lease_owner == OWNER
        assert (moved.lease_expires_ts or 0) > clock.now
    else:
        assert (moved.lease_owner, moved.lease_expires_ts) == (None, None)
    last = journal.events(post.post_id)[-1]
    assert (last.kind, last.at_ts) == ("state", clock.now)
    assert (last.data["from"], last.data["to"], last.data["why"]) == (src.value, dst.value, "test")


@pytest.mark.parametrize(
    ("src", "dst"), ILLEGAL, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL]
)
def test_every_illegal_transition_is_refused_and_changes_nothing(
    journal: Journal, src: PostState, dst: PostState
) -> None:
    post = post_in(journal, src)
    before = journal.events(post.post_id)
    with pytest.raises(IllegalTransitionError):
        journal.transition(post.post_id, dst, owner=OWNER if src is S.UPLOADING else None)
    assert journal.get(post.post_id) == post
    assert journal.events(post.post_id) == before


def test_transition_updates_whitelisted_fields_only(journal: Journal) -> None:
    post = post_in(journal, S.UPLOADING)
    with pytest.raises(TypeError, match="lease_owner"):
        journal.transition(post.post_id, S.WAITING, lease_owner="me")
    with pytest.raises(TypeError, match="state"):
        journal.transition(post.post_id, S.WAITING, state="confirmed")
    with pytest.raises(ValueError, match="non-negative"):
        journal.transition(post.post_id, S.WAITING, offset=-1)
    with pytest.raises(ValueError, match="beyond size"):
        journal.transition(post.post_id, S.WAITING, offset=1001)
    moved = journal.transition(
        post.post_id,
        S.WAITING,
        owner=OWNER,
        upload_url="https://uploads.example/files/1",
        offset=400,
        attempts=2,
        next_attempt_at=T0 + 60,
        last_error="503 from https://uploads.example/files/1?token=s3cret",
        upload_expires_at=T0 + 86400,
        extra={"publish_id": "p1"},
        sha256=SHA,
        size=2000,
        mtime_ns=99,
    )
    assert (moved.upload_url, moved.offset, moved.attempts) == (
        "https://uploads.example/files/1", 400, 2)
    assert (moved.next_attempt_ts, moved.upload_expires_ts) == (T0 + 60, T0 + 86400)
    assert moved.last_error == "503 from https://uploads.example/files/1?token=REDACTED"
    assert moved.identity == FileIdentity(size=2000, mtime_ns=99, sha256=SHA)
    assert dict(moved.extra) == {"publish_id": "p1"}
    event = journal.events(post.post_id)[-1]
    assert "s3cret" not in str(event.data)
    # A new upload URL without an offset starts that upload at 0; extra is replaced whole.
    again = journal.transition(post.post_id, S.QUEUED, upload_url=None, extra={"b": 1})
    assert (again.upload_url, again.offset, dict(again.extra)) == (None, 0, {"b": 1})


def test_event_data_cannot_fake_from_and_to(journal: Journal) -> None:
    post = add(journal)
    journal.transition(post.post_id, S.CANCELLED, event={"from": "x", "to": "y", "by": "user"})
    data = journal.events(post.post_id)[-1].data
    assert (data["from"], data["to"], data["by"]) == ("queued", "cancelled", "user")


def test_entering_uploading_needs_an_owner(journal: Journal) -> None:
    post = add(journal)
    with pytest.raises(ValueError, match="owner"):
        journal.transition(post.post_id, S.UPLOADING)
    assert journal.get(post.post_id).state is S.QUEUED


def test_transition_with_owner_checks_the_lease(journal: Journal) -> None:
    post = post_in(journal, S.UPLOADING)
    with pytest.raises(LeaseHeldError):
        journal.transition(post.post_id, S.UNCONFIRMED, owner="someone-else")
    assert journal.get(post.post_id).state is S.UPLOADING
    # Without an owner the move is administrative (the user cancels) and frees the lease.
    cancelled = journal.transition(post.post_id, S.CANCELLED)
    assert (cancelled.state, cancelled.lease_owner) == (S.CANCELLED, None)
    # The uploader finds out at its next checkpoint.
    with pytest.raises(IllegalTransitionError):
        journal.checkpoint(post.post_id, owner=OWNER, offset=10)


# --- checkpoints and leases -------------------------------------------------------------------


def test_checkpoint_saves_progress_and_renews_the_lease(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    journal.claim(owner=OWNER, lease_s=30)
    clock.advance(20)
    url = "https://uploads.example/files/abc"
    cp = journal.checkpoint(post.post_id, owner=OWNER, lease_s=30, upload_url=url, offset=0)
    assert (cp.upload_url, cp.offset, cp.lease_expires_ts) == (url, 0, clock.now + 30)
    cp = journal.checkpoint(post.post_id, owner=OWNER, offset=500, sha256=SHA, attempts=1)
    assert (cp.offset, cp.identity.sha256, cp.attempts) == (500, SHA, 1)
    assert cp.lease_expires_ts == clock.now + DEFAULT_LEASE_S
    assert cp.state is S.UPLOADING
    note = journal.events(post.post_id)[-1]
    assert (note.kind, note.data["upload_url"]) == ("note", url)


def test_checkpoint_offset_never_goes_back_within_one_upload(journal: Journal) -> None:
    post = post_in(journal, S.UPLOADING)
    pid = post.post_id
    journal.checkpoint(pid, owner=OWNER, upload_url="https://u/1", offset=600)
    with pytest.raises(JournalError, match="back"):
        journal.checkpoint(pid, owner=OWNER, offset=599)
    with pytest.raises(JournalError, match="back"):
        journal.checkpoint(pid, owner=OWNER, upload_url="https://u/1", offset=0)
    assert journal.get(pid).offset == 600
    # A new upload (new URL) may start again from 0, and does so by default.
    assert journal.checkpoint(pid, owner=OWNER, upload_url="https://u/2").offset == 0
    assert journal.checkpoint(pid, owner=OWNER, offset=700).offset == 700
    assert journal.checkpoint(pid, owner=OWNER, upload_url="https://u/3", offset=5).offset == 5


def test_checkpoint_rejects_other_fields_and_foreign_owners(journal: Journal) -> None:
    post = post_in(journal, S.UPLOADING)
    with pytest.raises(TypeError, match="last_error"):
        journal.checkpoint(post.post_id, owner=OWNER, last_error="x")
    with pytest.raises(LeaseHeldError):
        journal.checkpoint(post.post_id, owner="intruder", offset=1)
    with pytest.raises(LeaseHeldError):
        journal.renew(post.post_id, owner="intruder")
    with pytest.raises(ValueError, match="lease_s"):
        journal.renew(post.post_id, owner=OWNER, lease_s=0)


def test_claim_scans_oldest_first_and_returns_none_when_idle(
    journal: Journal, clock: FakeClock
) -> None:
    assert journal.claim(owner="a") is None
    first, second = add(journal), None
    clock.advance(1)
    second = add(journal)
    got = journal.claim(owner="a", lease_s=60)
    assert got is not None
    assert got.post_id == first.post_id
    assert (got.state, got.lease_owner, got.lease_expires_ts) == (S.UPLOADING, "a", clock.now + 60)
    assert got.attempts == 0
    got2 = journal.claim(owner="b")
    assert got2 is not None
    assert got2.post_id == second.post_id
    assert journal.claim(owner="c") is None  # both leases are live
    assert state_kinds(journal, first.post_id) == [(None, "queued"), ("queued", "uploading")]
    assert journal.events(first.post_id)[-1].data["owner"] == "a"


def test_dead_owners_lease_expires_and_hands_the_post_over(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    journal.claim(owner="dead", lease_s=60)
    journal.checkpoint(
        post.post_id, owner="dead", lease_s=60, upload_url="https://u/1", offset=300
    )
    clock.advance(59)
    assert journal.claim(owner="alive") is None
    with pytest.raises(LeaseHeldError, match="dead"):
        journal.claim(owner="alive", post_id=post.post_id)
    clock.advance(1)  # expired exactly now
    taken = journal.claim(owner="alive")
    assert taken is not None
    assert taken.post_id == post.post_id
    assert (taken.lease_owner, taken.upload_url, taken.offset) == ("alive", "https://u/1", 300)
    last = journal.events(post.post_id)[-1]
    assert (last.data["previous_owner"], last.data["owner"]) == ("dead", "alive")
    # The old owner, should it wake up, can no longer write.
    with pytest.raises(LeaseHeldError):
        journal.checkpoint(post.post_id, owner="dead", offset=400)
    with pytest.raises(LeaseHeldError):
        journal.release(post.post_id, owner="dead")


def test_renew_keeps_the_lease_alive(journal: Journal, clock: FakeClock) -> None:
    post = add(journal)
    journal.claim(owner="a", lease_s=60)
    for _ in range(5):
        clock.advance(50)
        assert journal.renew(post.post_id, owner="a", lease_s=60).lease_expires_ts == clock.now + 60
        assert journal.claim(owner="b") is None


def test_reclaim_by_the_same_owner_renews_without_a_new_event(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    journal.claim(owner="a", post_id=post.post_id, lease_s=10)
    n = len(journal.events(post.post_id))
    clock.advance(5)
    again = journal.claim(owner="a", post_id=post.post_id, lease_s=10)
    assert again is not None
    assert again.lease_expires_ts == clock.now + 10
    assert len(journal.events(post.post_id)) == n


def test_waiting_post_is_claimable_when_its_time_comes(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    journal.claim(owner="a")
    journal.release(post.post_id, owner="a", next_attempt_at=clock.now + 100, last_error="503")
    assert journal.get(post.post_id).state is S.WAITING
    assert journal.claim(owner="b") is None
    assert journal.claim(owner="b", now=clock.now + 100) is not None


def test_claim_by_id_ignores_backoff_but_not_the_lifecycle(
    journal: Journal, clock: FakeClock
) -> None:
    waiting = journal.transition(add(journal).post_id, S.WAITING, next_attempt_at=T0 + 999)
    got = journal.claim(owner="a", post_id=waiting.post_id)
    assert got is not None
    assert got.state is S.UPLOADING
    for state in (S.UNCONFIRMED, S.CONFIRMED, S.FAILED, S.CANCELLED):
        post = post_in(journal, state)
        with pytest.raises(IllegalTransitionError):
            journal.claim(owner="a", post_id=post.post_id)


def test_unconfirmed_posts_are_never_claimed(journal: Journal, clock: FakeClock) -> None:
    post_in(journal, S.UNCONFIRMED)
    assert journal.claim(owner="z", now=clock.now + 10**9) is None


# --- fencing ------------------------------------------------------------------------------------


def test_every_claim_bumps_the_fencing_epoch(journal: Journal, clock: FakeClock) -> None:
    post = add(journal)
    assert post.lease_epoch == 0
    first = journal.claim(owner="a", lease_s=10)
    assert first is not None
    assert first.lease_epoch == 1
    again = journal.claim(owner="a", post_id=post.post_id, lease_s=10)  # renewing is a claim too
    assert again is not None
    assert again.lease_epoch == 2
    journal.release(post.post_id, owner="a", epoch=2)
    clock.advance(1)
    assert journal.claim(owner="b") is not None
    assert journal.get(post.post_id).lease_epoch == 3
    moved = journal.transition(add(journal).post_id, S.UPLOADING, owner="c")  # a claim as well
    assert moved.lease_epoch == 1


def test_a_write_with_a_stale_epoch_changes_nothing_and_says_the_post_was_lost(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    old = journal.claim(owner="w", lease_s=10)
    assert old is not None
    journal.checkpoint(post.post_id, owner="w", epoch=old.lease_epoch, upload_url="https://u/1",
                       offset=10, lease_s=10)  # fmt: skip
    # The same owner name claims the post again (its own retry, a restarted worker):
    # writes of the earlier claim must not land on the new one.
    new = journal.claim(owner="w", post_id=post.post_id, lease_s=10)
    assert new is not None
    before, events = journal.get(post.post_id), journal.events(post.post_id)
    writes = [
        lambda: journal.checkpoint(post.post_id, owner="w", epoch=old.lease_epoch, offset=20),
        lambda: journal.renew(post.post_id, owner="w", epoch=old.lease_epoch),
        lambda: journal.transition(post.post_id, S.CONFIRMED, owner="w", epoch=old.lease_epoch),
        lambda: journal.release(post.post_id, owner="w", epoch=old.lease_epoch),
        lambda: journal.record(post.post_id, "note", {"m": 1}, owner="w", epoch=old.lease_epoch),
    ]
    for write in writes:
        with pytest.raises(LeaseHeldError, match="lost the post"):
            write()
    assert journal.get(post.post_id) == before
    assert journal.events(post.post_id) == events
    # The current claim writes on.
    done = journal.transition(post.post_id, S.CONFIRMED, owner="w", epoch=new.lease_epoch)
    assert done.state is S.CONFIRMED


def test_a_worker_whose_post_was_taken_over_writes_nothing_more(
    journal: Journal, clock: FakeClock
) -> None:
    post = add(journal)
    frozen = journal.claim(owner="frozen", lease_s=30)
    assert frozen is not None
    clock.advance(31)  # frozen (SIGSTOP) past its lease; another worker takes the post
    other = journal.claim(owner="other", lease_s=30)
    assert other is not None
    assert other.lease_epoch == frozen.lease_epoch + 1
    events = journal.events(post.post_id)
    with pytest.raises(LeaseHeldError):
        journal.checkpoint(post.post_id, owner="frozen", epoch=frozen.lease_epoch, offset=5)
    with pytest.raises(LeaseHeldError):
        journal.record(post.post_id, "request", {"method": "PATCH"}, owner="frozen")
    assert journal.events(post.post_id) == events
    assert journal.get(post.post_id).lease_owner == "other"


def test_a_frozen_worker_nobody_took_over_goes_on(journal: Journal, clock: FakeClock) -> None:
    post = add(journal)
    claimed = journal.claim(owner="w", lease_s=30)
    assert claimed is not None
    clock.advance(300)  # its lease ran out, but no one claimed the post meanwhile
    renewed = journal.renew(post.post_id, owner="w", epoch=claimed.lease_epoch, lease_s=30)
    assert renewed.lease_expires_ts == clock.now + 30


def test_renew_all_is_a_heartbeat_for_the_leases_still_held(
    journal: Journal, clock: FakeClock
) -> None:
    a, b, c = add(journal), add(journal), add(journal)
    for post, owner in ((a, "w1"), (b, "w2"), (c, "w3")):
        journal.claim(owner=owner, post_id=post.post_id, lease_s=30)
    journal.release(c.post_id, owner="w3")
    clock.advance(20)
    held = journal.renew_all([(a.post_id, "w1"), (b.post_id, "not-me"), (c.post_id, "w3")],
                             lease_s=30)  # fmt: skip
    assert held == {a.post_id}
    assert journal.get(a.post_id).lease_expires_ts == clock.now + 30
    assert journal.get(b.post_id).lease_expires_ts == T0 + 30
    assert journal.get(c.post_id).state is S.WAITING


def test_claim_passes_over_the_posts_it_is_told_to_skip(journal: Journal) -> None:
    first, second = add(journal), add(journal)
    got = journal.claim(owner="a", skip={first.post_id})
    assert got is not None
    assert got.post_id == second.post_id
    assert journal.claim(owner="a", skip={first.post_id}) is None
    assert journal.claim(owner="a", skip=()) is not None


def test_a_due_check_is_reserved_for_one_worker_at_a_time(
    journal: Journal, clock: FakeClock
) -> None:
    first, second = post_in(journal, S.UNCONFIRMED), post_in(journal, S.UNCONFIRMED)
    for post in (first, second):
        journal.transition(post.post_id, S.UNCONFIRMED, next_attempt_at=T0)
    before = journal.get(first.post_id)
    mine = journal.claim_check(owner="a", lease_s=30)
    theirs = journal.claim_check(owner="b", lease_s=30)
    assert mine is not None
    assert theirs is not None
    assert {mine.post_id, theirs.post_id} == {first.post_id, second.post_id}
    assert journal.claim_check(owner="c", lease_s=30) is None  # both are being checked
    assert journal.due(state=S.UNCONFIRMED) == []
    reserved = journal.get(first.post_id)
    assert (reserved.state, reserved.updated_at) == (S.UNCONFIRMED, before.updated_at)
    # A check's outcome ends the reservation; an abandoned one ends with its lease.
    journal.transition(mine.post_id, S.CONFIRMED)
    assert journal.get(mine.post_id).lease_owner is None
    clock.advance(31)
    assert [p.post_id for p in journal.due(state=S.UNCONFIRMED)] == [theirs.post_id]
    again = journal.claim_check(owner="c", lease_s=30, skip={mine.post_id})
    assert again is not None
    assert again.post_id == theirs.post_id
    assert journal.claim_check(owner="d", skip={theirs.post_id}) is None


def test_due_can_be_asked_for_some_states_only(journal: Journal, clock: FakeClock) -> None:
    queued = add(journal)
    unconfirmed = post_in(journal, S.UNCONFIRMED)
    journal.transition(unconfirmed.post_id, S.UNCONFIRMED, next_attempt_at=T0)
    assert {p.post_id for p in journal.due()} == {queued.post_id, unconfirmed.post_id}
    assert [p.post_id for p in journal.due(state=S.UNCONFIRMED)] == [unconfirmed.post_id]
    assert [p.post_id for p in journal.due(state=[S.QUEUED, S.WAITING])] == [queued.post_id]
    assert journal.due(state=[]) == []


# --- scheduling ---------------------------------------------------------------------------------


def test_due_and_next_due_at(journal: Journal, clock: FakeClock) -> None:
    assert journal.due() == []
    assert journal.next_due_at() is None
    waiting = journal.transition(add(journal).post_id, S.WAITING, next_attempt_at=T0 + 100)
    unconfirmed = post_in(journal, S.UNCONFIRMED)
    journal.transition(unconfirmed.post_id, S.UNCONFIRMED, next_attempt_at=T0 + 50)
    uploading = add(journal)
    journal.claim(owner="x", post_id=uploading.post_id, lease_s=200)
    post_in(journal, S.CONFIRMED)
    assert journal.due() == []
    assert journal.next_due_at() == T0 + 50
    assert [p.post_id for p in journal.due(now=T0 + 50)] == [unconfirmed.post_id]
    assert [p.post_id for p in journal.due(now=T0 + 200)] == [
        unconfirmed.post_id, waiting.post_id, uploading.post_id]
    assert len(journal.due(now=T0 + 200, limit=1)) == 1
    queued = add(journal)
    assert [p.post_id for p in journal.due()] == [queued.post_id]
    assert journal.next_due_at() == T0


def test_waiting_without_a_time_is_due_at_once(journal: Journal) -> None:
    post = journal.transition(add(journal).post_id, S.WAITING)
    assert [p.post_id for p in journal.due()] == [post.post_id]


# --- events -------------------------------------------------------------------------------------


def test_record_appends_sanitised_events(journal: Journal, clock: FakeClock) -> None:
    post = add(journal)
    clock.advance(3)
    journal.record(
        post.post_id,
        "request",
        {
            "method": "PATCH",
            "url": "https://u.example/files/1?access_token=AT&part=2&X-Amz-Signature=SIG",
            "headers": {"Authorization": "Bearer sekrit-token-value", "Upload-Offset": "0"},
            "token": "TOKEN",
            "pairs": [("Cookie", "c=1"), ("Accept", "*/*")],
        },
    )
    journal.record(post.post_id, "error", {"message": "failed: Bearer abcdefghijk123 rejected"})
    request, error = journal.events(post.post_id)[1:]
    assert (request.kind, request.at_ts) == ("request", T0 + 3)
    assert request.data["url"] == (
        "https://u.example/files/1?access_token=REDACTED&part=2&X-Amz-Signature=REDACTED"
    )
    assert dict(request.data["headers"]) == {"Upload-Offset": "0"}
    assert "token" not in request.data
    assert request.data["pairs"] == (("Accept", "*/*"),)
    assert error.data["message"] == "failed: Bearer REDACTED rejected"
    stored = str([dict(e.data) for e in journal.events(post.post_id)])
    for secret in ("=AT", "SIG", "sekrit", "TOKEN", "c=1", "abcdefghijk123"):
        assert secret not in stored


@pytest.mark.parametrize("kind", ["state", "bogus", ""])
def test_record_refuses_other_kinds(journal: Journal, kind: str) -> None:
    post = add(journal)
    with pytest.raises(ValueError, match="kind"):
        journal.record(post.post_id, kind, {})


def test_events_are_append_only(journal: Journal, journal_target: str) -> None:
    post = add(journal)
    refused = raw_error_types(journal_target)
    with pytest.raises(refused, match="append-only"):
        raw_execute(journal_target, "UPDATE events SET kind = 'note'")
    with pytest.raises(refused, match="never deleted"):
        raw_execute(journal_target, "DELETE FROM posts")
    assert journal.events(post.post_id)[0].kind == "state"


# --- purge --------------------------------------------------------------------------------------


def test_purge_deletes_only_old_finished_posts(journal: Journal, clock: FakeClock) -> None:
    old = {state: post_in(journal, state) for state in PostState}
    clock.advance(DEFAULT_RETENTION_S + 1)
    recent = post_in(journal, S.CONFIRMED)
    assert journal.purge() == 3
    left = {p.post_id for p in journal.list()}
    assert left == {old[s].post_id for s in PostState if not s.finished} | {recent.post_id}
    for state in (S.CONFIRMED, S.FAILED, S.CANCELLED):
        with pytest.raises(PostNotFoundError):
            journal.events(old[state].post_id)
    # Even with a zero retention and years later, unfinished posts stay.
    clock.advance(10 * 365 * 86400)
    assert journal.purge(older_than_s=0) == 1
    assert {p.state for p in journal.list()} == {s for s in PostState if not s.finished}
    journal.check()
    with pytest.raises(ValueError, match="older_than_s"):
        journal.purge(older_than_s=-1)


# --- host state ---------------------------------------------------------------------------------


def test_host_state_round_trip(journal: Journal) -> None:
    assert journal.get_host_state("api.example", "breaker") is None
    journal.put_host_state("API.Example", "breaker", {"state": "open", "until": T0 + 30})
    assert journal.get_host_state("api.example", "breaker") == {"state": "open", "until": T0 + 30}
    assert journal.get_host_state("api.example", "budget") is None
    journal.put_host_state("api.example", "breaker", {"state": "closed"})
    assert journal.get_host_state("api.example", "breaker") == {"state": "closed"}
    with pytest.raises(ValueError, match="JSON"):
        journal.put_host_state("h", "k", {"bad": object()})


def test_update_host_state_is_read_modify_write(journal: Journal) -> None:
    def bump(state: dict[str, Any] | None) -> dict[str, Any]:
        return {"tokens": (state or {"tokens": 0})["tokens"] + 1}

    for _ in range(3):
        journal.update_host_state("h", "budget", bump)
    assert journal.get_host_state("h", "budget") == {"tokens": 3}


def test_host_state_updates_from_many_workers_at_once_lose_nothing(journal_target: str) -> None:
    """Each worker's read-modify-write sees the others' (the row is locked meanwhile)."""
    Journal(journal_target).close()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def bump(state: dict[str, Any] | None) -> dict[str, Any]:
        return {"n": (state or {"n": 0})["n"] + 1}

    def worker() -> None:
        try:
            with Journal(journal_target) as j:
                barrier.wait()
                for _ in range(25):
                    j.update_host_state("api.example", "breaker", bump)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Journal(journal_target) as j:
        assert j.get_host_state("api.example", "breaker") == {"n": 100}


# --- transactions -------------------------------------------------------------------------------


def test_atomic_groups_writes_and_rolls_back_on_error(journal: Journal) -> None:
    def add_then_fail() -> None:
        with journal.atomic():
            add(journal)
            journal.put_host_state("h", "k", {"a": 1})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        add_then_fail()
    assert journal.list() == []
    assert journal.get_host_state("h", "k") is None


def test_nested_atomic_joins_the_outer_transaction(journal: Journal, journal_target: str) -> None:
    def add_then_fail() -> None:
        with journal.atomic():
            add(journal, post_id="inner")
            raise RuntimeError("inner fails")

    other = Journal(journal_target)
    try:
        with journal.atomic():
            kept = add(journal)
            with pytest.raises(RuntimeError, match="inner"):
                add_then_fail()
            with journal.atomic():
                add(journal, post_id="inner-ok")
            with pytest.raises(PostNotFoundError):  # nothing is visible before the commit
                other.get(kept.post_id)
        assert {p.post_id for p in other.list()} == {kept.post_id, "inner-ok"}
    finally:
        other.close()


def test_closed_journal_refuses_work(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.list()
    with pytest.raises(JournalError, match="closed"), j.atomic():
        pass


def test_check_passes_on_a_healthy_journal(journal: Journal) -> None:
    post_in(journal, S.UNCONFIRMED)
    journal.check()  # raises on any problem


# --- paths --------------------------------------------------------------------------------------


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYPOST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEADYPOST_CONFIG_DIR", str(tmp_path / "cfg"))
    assert paths.data_dir() == tmp_path / "home"
    assert paths.config_dir() == tmp_path / "cfg"
    assert paths.default_journal_path() == tmp_path / "home" / "journal.sqlite3"
    with Journal() as j:  # the default location, created on first use
        assert j.path == tmp_path / "home" / "journal.sqlite3"
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700


def test_paths_fall_back_to_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STEADYPOST_HOME", raising=False)
    monkeypatch.setenv("STEADYPOST_CONFIG_DIR", "")
    monkeypatch.setenv("HOME", "not/absolute")  # past the Linux shortcut (see tests/cli)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "d"))
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda *a, **k: str(tmp_path / "c"))
    assert paths.data_dir() == tmp_path / "d"
    assert paths.config_dir() == tmp_path / "c"
