"""One post per (file, site, account): the journal joins a repeated add instead of a twin.

The contract of ``Journal.add_or_join`` / ``Journal.add``: what counts as the same file,
site and account, which states block a new post, ``new=True``, the unique index behind
it (no code path can insert a twin), the migration that gave older journals their keys,
and real processes adding the same file at the same instant.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_journal_concurrency import run_at_once

import steadypost
from journals import raw_error_types, raw_execute
from steadypost.drivers.files import snapshot_file
from steadypost.journal import AddResult, Journal
from steadypost.journal.migrations import migrate
from steadypost.models import FileIdentity, Post, PostState

S = PostState
T0 = 1_700_000_000.0
SITE = "https://uploads.example/files/"
SDK_DIR = str(Path(steadypost.__file__).resolve().parents[1])


@pytest.fixture
def journal(journal_target: str) -> Iterator[Journal]:
    with Journal(journal_target, clock=lambda: T0) as j:
        yield j


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"v" * 1000)
    return path


def add(journal: Journal, path: Path, **kw: Any) -> AddResult:
    """``add_or_join`` of a real file, with its identity as ``snapshot_file`` sees it."""
    file = snapshot_file(path)
    kw.setdefault("endpoint", SITE)
    return journal.add_or_join(path=path, identity=file.identity, **kw)


def test_the_same_file_joins_its_post_and_writes_nothing(journal: Journal, video: Path) -> None:
    first = add(journal, video, metadata={"caption": "one"})
    assert not first.joined
    events = journal.events(first.post.post_id)
    again = add(journal, video, metadata={"caption": "two"})
    assert again.joined
    assert again.post == first.post  # the post as it is: its own metadata kept
    assert dict(again.post.metadata) == {"caption": "one"}
    assert [p.post_id for p in journal.list()] == [first.post.post_id]
    assert journal.events(first.post.post_id) == events
    # Journal.add joins too, returning the post (add_or_join says which happened).
    identity = snapshot_file(video).identity
    assert journal.add(path=video, endpoint=SITE, identity=identity) == first.post


@pytest.mark.parametrize("state", [S.QUEUED, S.UPLOADING, S.WAITING, S.UNCONFIRMED, S.CONFIRMED])
def test_every_state_but_failed_and_cancelled_is_joined(
    journal: Journal, video: Path, state: PostState
) -> None:
    post = add(journal, video).post
    _move(journal, post.post_id, state)
    again = add(journal, video)
    assert again.joined
    assert (again.post.post_id, again.post.state) == (post.post_id, state)


@pytest.mark.parametrize("state", [S.FAILED, S.CANCELLED])
def test_a_failed_or_cancelled_post_does_not_block_a_new_one(
    journal: Journal, video: Path, state: PostState
) -> None:
    old = add(journal, video).post
    _move(journal, old.post_id, state)
    new = add(journal, video)
    assert not new.joined
    assert new.post.post_id != old.post_id
    assert add(journal, video).post.post_id == new.post.post_id  # and that one is joined


def _move(journal: Journal, post_id: str, state: PostState) -> None:
    if state is S.QUEUED:
        return
    journal.claim(owner="worker", post_id=post_id)
    if state is not S.UPLOADING:
        journal.transition(post_id, state, owner="worker")


def test_new_makes_a_further_post_on_purpose(journal: Journal, video: Path) -> None:
    first = add(journal, video).post
    second = add(journal, video, new=True)
    assert not second.joined
    assert second.post.post_id != first.post_id
    assert journal.events(second.post.post_id)[0].data["new_on_purpose"] == (
        f"another post of this file: {first.post_id}")  # fmt: skip
    # A plain add joins the latest of them; both can be uploaded.
    assert add(journal, video).post.post_id == second.post.post_id
    _move(journal, second.post.post_id, S.FAILED)
    assert add(journal, video).post.post_id == first.post_id


def test_a_new_post_with_nothing_to_join_is_a_plain_one(journal: Journal, video: Path) -> None:
    post = add(journal, video, new=True).post
    assert add(journal, video).post.post_id == post.post_id


def test_what_makes_another_post(journal: Journal, video: Path, tmp_path: Path) -> None:
    base = add(journal, video).post.post_id
    # Another site (origin), platform or account label: another post.
    assert not add(journal, video, endpoint="https://other.example/files/").joined
    assert not add(journal, video, platform="vimeo").joined
    label = {"platform": {"account": "travel-channel"}}
    assert not add(journal, video, extra=label).joined
    assert add(journal, video, extra=label).joined
    # The same origin (default port, case) with another path is the same site.
    same_site = add(journal, video, endpoint="HTTPS://Uploads.Example:443/other/")
    assert (same_site.joined, same_site.post.post_id) == (True, base)
    # A symlink to the file is the same file.
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    assert add(journal, link).post.post_id == base
    # A changed file (written to: size, mtime, ctime) is another video.
    with video.open("ab") as f:
        f.write(b"more")
    assert not add(journal, video).joined


def test_a_file_replaced_by_rename_is_another_video(journal: Journal, video: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    before = snapshot_file(video)
    add(journal, video)
    other = tmp_path / "new.mp4"
    other.write_bytes(b"w" * 1000)
    os.utime(other, ns=(before.mtime_ns, before.mtime_ns))  # same size and mtime
    other.replace(video)
    assert not add(journal, video).joined  # another inode


def test_only_the_account_label_of_the_platform_settings_counts(journal: Journal,
                                                                video: Path) -> None:  # fmt: skip
    """Other settings (and tokens, which never reach the journal) are the same account."""
    first = add(journal, video, extra={"platform": {"account": "me"}})
    with_other_settings = add(journal, video, extra={"platform": {"account": "me", "x": "1"}})
    assert with_other_settings.joined
    assert with_other_settings.post.post_id == first.post.post_id


def test_no_code_path_can_insert_a_twin(
    journal: Journal, video: Path, journal_target: str
) -> None:
    post = add(journal, video).post
    [(key,)] = raw_execute(journal_target, f"SELECT file_key FROM posts WHERE post_id = "
                                           f"'{post.post_id}'")  # fmt: skip
    twin = ("INSERT INTO posts (post_id, platform, endpoint, path, size, mtime_ns, state,"
            " created_at, updated_at, file_key) VALUES ('{}', 'tus', 'x', 'x', 1, 1, '{}', 0, 0,"
            f" '{key}')")  # fmt: skip
    with pytest.raises(raw_error_types(journal_target), match=r"(?i)unique|duplicate key"):
        raw_execute(journal_target, twin.format("twin", "queued"))
    raw_execute(journal_target, twin.format("failed-one", "failed"))  # a failed one never blocks


def test_migration_4_gives_older_posts_their_keys(tmp_path: Path, video: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, now=T0, target=3)
    identity = snapshot_file(video).identity
    for n, state in enumerate(["waiting", "queued", "failed"]):  # twins, as 0.1 made them
        conn.execute(
            "INSERT INTO posts (post_id, platform, endpoint, path, size, mtime_ns, dev, inode,"
            " ctime_ns, state, created_at, updated_at) VALUES (?, 'tus', ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            (f"old-{n}", SITE, str(video), identity.size, identity.mtime_ns, identity.dev,
             identity.inode, identity.ctime_ns, state, T0 + n, T0 + n),
        )  # fmt: skip
    conn.close()
    with Journal(path, clock=lambda: T0 + 10) as j:
        again = add(j, video)
        assert (again.joined, again.post.post_id) == (True, "old-1")  # the latest one
        j.transition("old-1", S.CANCELLED)
        assert add(j, video).post.post_id == "old-0"  # the oldest kept the key's place
        j.check()


# --- real processes adding the same file at the same instant ------------------------------

_ADDER = """
import sys
from steadypost.drivers.files import snapshot_file
from steadypost.journal import Journal
journal = Journal(sys.argv[1])
file = snapshot_file(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # the barrier: every process is ready, then all add at once
result = journal.add_or_join(path=file.path, endpoint=sys.argv[3], identity=file.identity)
print(result.post.post_id, result.joined, flush=True)
journal.close()
"""


def test_processes_adding_the_same_file_at_once_get_one_post(
    journal_target: str, video: Path
) -> None:
    path = journal_target
    Journal(path).close()
    answers = [out.split() for out in run_at_once(6, _ADDER, str(path), str(video), SITE)]
    assert len({post_id for post_id, _ in answers}) == 1, answers
    assert sorted(joined for _, joined in answers) == ["False"] + ["True"] * 5
    with Journal(path) as j:
        assert len(j.list()) == 1
        j.check()


def test_identity_without_inode_still_joins(journal: Journal) -> None:
    """Where the OS gives no device/inode/ctime (Windows), size and mtime still identify."""
    identity = FileIdentity(size=10, mtime_ns=5)
    first = journal.add_or_join(path="/videos/a.mp4", endpoint=SITE, identity=identity)
    again = journal.add_or_join(path="/videos/a.mp4", endpoint=SITE, identity=identity)
    assert again.joined
    assert again.post.post_id == first.post.post_id


def test_migration_4_keys_a_post_without_an_inode_by_the_file_as_it_is(
    tmp_path: Path, video: Path
) -> None:
    """A post from before migration 3 (no device/inode/ctime) is found by a new add."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, now=T0, target=2)
    file = snapshot_file(video)
    conn.execute(
        "INSERT INTO posts (post_id, platform, endpoint, path, size, mtime_ns, state, created_at,"
        " updated_at) VALUES ('v1', 'tus', ?, ?, ?, ?, 'waiting', ?, ?)",
        (SITE, str(video), file.size, file.mtime_ns, T0, T0),
    )
    conn.close()
    with Journal(path, clock=lambda: T0 + 10) as j:
        again = add(j, video)
        assert (again.joined, again.post.post_id) == (True, "v1")
        # Its next run fills the identity in: the key stays the same.
        j.claim(owner="worker", post_id="v1")
        j.checkpoint("v1", owner="worker", dev=file.dev, inode=file.inode, ctime_ns=file.ctime_ns)
        assert add(j, video).post.post_id == "v1"


def _edit(video: Path) -> None:
    with video.open("ab") as f:
        f.write(b"an edit")


def _start_over(journal: Journal, post_id: str, video: Path) -> Post:
    """What ``PostRun.open_file`` does with ``restart_if_changed=True``: the new identity."""
    changed = snapshot_file(video)
    journal.claim(owner="worker", post_id=post_id)
    return journal.transition(
        post_id, S.UPLOADING, owner="worker", size=changed.size, mtime_ns=changed.mtime_ns,
        dev=changed.dev, inode=changed.inode, ctime_ns=changed.ctime_ns,
    )  # fmt: skip


def test_a_post_started_over_on_its_changed_file_is_found_by_the_new_file(
    journal: Journal, video: Path
) -> None:
    post = add(journal, video).post
    _edit(video)
    _start_over(journal, post.post_id, video)
    assert add(journal, video).post.post_id == post.post_id


def test_starting_over_onto_a_file_that_has_its_own_post_makes_no_conflict(
    journal: Journal, video: Path
) -> None:
    old = add(journal, video).post
    _edit(video)
    newer = add(journal, video).post  # the user posted the edited file meanwhile
    assert newer.post_id != old.post_id
    moved = _start_over(journal, old.post_id, video)  # no unique-index error: a further post
    assert moved.identity.size == newer.identity.size
    assert add(journal, video).post.post_id in {old.post_id, newer.post_id}
    journal.check()
