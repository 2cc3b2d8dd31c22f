"""The journal file on disk: privacy, WAL, corrupt files, full disks, unwritable dirs, kill -9."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import steadypost
from steadypost.errors import JournalError
from steadypost.journal import Journal, JournalCorruptError
from steadypost.models import FileIdentity, PostState

SDK_DIR = str(Path(steadypost.__file__).resolve().parents[1])
IDENTITY = FileIdentity(size=1000, mtime_ns=1)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SDK_DIR, env.get("PYTHONPATH")]))
    return env


_videos = itertools.count()


def add(journal: Journal, **kw: object) -> str:
    """A post of another video each time (one file would join its one post)."""
    path = f"v{next(_videos)}.mp4"
    return journal.add(path=path, endpoint="https://e/", identity=IDENTITY, **kw).post_id  # type: ignore[arg-type]


# --- file creation ------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # prove the modes do not depend on a careful umask
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.usefixtures("open_umask")
def test_new_journal_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "journal.sqlite3"
    with Journal(path) as j:
        add(j)
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        for sidecar in ("-wal", "-shm"):  # SQLite copies the main file's mode
            assert Path(f"{path}{sidecar}").stat().st_mode & 0o777 == 0o600


def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as j:
        assert j._rows("PRAGMA journal_mode") == [("wal",)]
        assert j._rows("PRAGMA synchronous") == [(2,)]  # FULL
        assert j._rows("PRAGMA foreign_keys") == [(1,)]
        assert j._rows("PRAGMA busy_timeout") == [(10_000,)]
    with Journal(tmp_path / "j.sqlite3", busy_timeout_s=2.5) as j:
        assert j._rows("PRAGMA busy_timeout") == [(2_500,)]


# --- files that are not (healthy) journals -------------------------------------------------------


def other_app_db(path: Path) -> None:
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE notes (body TEXT)")
    c.execute("INSERT INTO notes VALUES ('my data')")
    c.commit()
    c.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(os.urandom(64 * 1024)),
        lambda p: p.write_text("name,caption\nclip.mp4,hello\n"),
        lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080),
        other_app_db,
    ],
    ids=["random-bytes", "text-file", "broken-header", "another-apps-db"],
)
def test_a_file_that_is_not_a_journal_is_refused_and_untouched(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.sqlite3"
    make(path)
    before, mode = path.read_bytes(), path.stat().st_mode
    with pytest.raises(JournalCorruptError) as info:
        Journal(path)
    assert str(path) in str(info.value)
    assert "untouched" in str(info.value)
    assert path.read_bytes() == before
    assert path.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.sqlite3"]


def test_corrupt_pages_are_reported_not_repaired(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        for i in range(150):
            add(j, metadata={"caption": f"clip {i} " + "x" * 400})
        page_size = j._rows("PRAGMA page_size")[0][0]
    data = bytearray(path.read_bytes())
    for page in range(3, len(data) // page_size - 1, 2):  # smash every other page
        start = page * page_size
        data[start : start + page_size] = os.urandom(page_size)
    path.write_bytes(bytes(data))

    with pytest.raises(JournalCorruptError, match=str(path)), Journal(path) as j:
        j.check()
    assert path.read_bytes() == bytes(data)


# --- a full disk ----------------------------------------------------------------------------------


def test_disk_full_fails_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    kept = [add(j) for _ in range(5)]
    j.transition(kept[0], PostState.WAITING, next_attempt_at=123.0)
    pages = j._rows("PRAGMA page_count")[0][0]
    j._rows(f"PRAGMA max_page_count = {pages}")  # SQLite now answers SQLITE_FULL

    big = {"caption": "x" * 200_000}
    with pytest.raises(JournalError, match="disk is full") as info:
        add(j, metadata=big)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert str(path) in str(info.value)
    with pytest.raises(JournalError, match="disk is full"):
        j.transition(kept[1], PostState.CANCELLED, extra={"blob": "y" * 200_000})
    with pytest.raises(JournalError, match="disk is full"):
        j.record(kept[2], "note", big)
    # The connection is still usable and nothing half-written is visible.
    assert [p.post_id for p in j.list()] == kept
    assert j.get(kept[1]).state is PostState.QUEUED
    assert len(j.events(kept[2])) == 1
    j._rows("PRAGMA max_page_count = 1073741823")  # space freed
    recovered = add(j, metadata=big)
    j.close()

    with Journal(path) as again:
        again.check()
        assert [p.post_id for p in again.list()] == [*kept, recovered]
        assert again.get(kept[0]).next_attempt_ts == 123.0


# --- directories we cannot write ------------------------------------------------------------------


def test_journal_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("keep me")
    with pytest.raises(JournalError, match=str(blocker)) as info:
        Journal(blocker / "journal.sqlite3")
    assert isinstance(info.value.__cause__, OSError)
    assert blocker.read_text() == "keep me"


_OPEN_AS_SOMEONE_ELSE = """
import json, os, socket, sys  # socket: loaded lazily, and nobody may not read the stdlib's home
from steadypost.journal import Journal
if os.geteuid() == 0:  # chmod does not stop root: become nobody once imports are done
    os.setgid(65534)
    os.setuid(65534)
out = {}
for name in sys.argv[2:]:
    try:
        Journal(os.path.join(sys.argv[1], name)).close()
        out[name] = "opened"
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_directory_is_a_clear_error_and_data_survives() -> None:
    base = Path(tempfile.mkdtemp(prefix="steadypost-ro-"))  # nobody must traverse it
    folder = base / "journal-dir"
    try:
        base.chmod(0o755)
        folder.mkdir()
        path = folder / "journal.sqlite3"
        with Journal(path) as j:
            ids = [add(j) for _ in range(3)]
        Journal(folder / "unreadable.sqlite3").close()
        (folder / "unreadable.sqlite3").chmod(0)  # root keeps it; nobody cannot read it
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)  # the file is theirs; only the directory is not
        folder.chmod(0o555)
        names = [path.name, "new.sqlite3", "unreadable.sqlite3"]
        proc = subprocess.run(
            [sys.executable, "-c", _OPEN_AS_SOMEONE_ELSE, str(folder), *names],
            capture_output=True, text=True, env=child_env(), timeout=60, check=False,
        )
        if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
            pytest.skip("cannot drop privileges here")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        for name in names:
            assert result[name].startswith("JournalError: cannot open journal"), result
            assert str(folder / name) in result[name]
        folder.chmod(0o755)
        with Journal(path) as j:  # fixed: everything is still there
            j.check()
            assert [p.post_id for p in j.list()] == ids
    finally:
        folder.chmod(0o755) if folder.exists() else None
        subprocess.run(["rm", "-rf", str(base)], check=False)


# --- kill -9 ---------------------------------------------------------------------------------

_WRITE_FOREVER = """
import sys
from steadypost.journal import Journal, make_owner
from steadypost.models import FileIdentity, PostState
journal, owner, i = Journal(sys.argv[1]), make_owner(), 0
while True:
    post = journal.add(path=f"/v/{i}.mp4", endpoint="https://e/", identity=FileIdentity(10**6, i),
                       metadata={"caption": "x" * (i % 7 * 300)})
    print("added", post.post_id, flush=True)
    journal.claim(owner=owner, post_id=post.post_id)
    journal.checkpoint(post.post_id, owner=owner, upload_url=f"https://e/{i}", offset=i)
    journal.record(post.post_id, "response", {"status": 204, "offset": i})
    print("checkpointed", post.post_id, flush=True)
    if i % 3 == 0:
        journal.transition(post.post_id, PostState.UNCONFIRMED, owner=owner, next_attempt_at=1.0)
        print("unconfirmed", post.post_id, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kill_after", [1, 17, 60])
def test_sigkill_mid_write_loses_nothing_committed(journal_target: str, kill_after: int) -> None:
    path = journal_target
    Journal(path).close()  # created up front, so the child only writes
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITE_FOREVER, path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while sum(line.startswith("added") for line in lines) < kill_after:
            line = proc.stdout.readline()
            assert line, f"the writer died early: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        lines += proc.stdout.read().splitlines()  # anything printed was committed first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    seen: dict[str, set[str]] = {}
    for line in lines:
        what, _, post_id = line.strip().partition(" ")
        seen.setdefault(what, set()).add(post_id)
    with Journal(path) as j:
        j.check()
        posts = {p.post_id: p for p in j.list()}
        assert seen["added"] <= set(posts)
        assert len(posts) <= len(seen["added"]) + 1  # at most the one in flight
        for post_id in seen.get("checkpointed", set()):
            post = posts[post_id]
            assert post.upload_url is not None
            assert post.state in (PostState.UPLOADING, PostState.UNCONFIRMED)
            assert [e.kind for e in j.events(post_id)][-1] in ("response", "state")
        for post_id in seen.get("unconfirmed", set()):
            assert posts[post_id].state is PostState.UNCONFIRMED
        # Whatever the kill interrupted is in a committed state, never half of one.
        for post in posts.values():
            kinds = [e.kind for e in j.events(post.post_id)]
            assert kinds[0] == "state"
            if post.state is PostState.UPLOADING:
                assert post.lease_owner is not None
        # And the journal is fully usable afterwards.
        assert add(j) in {p.post_id for p in j.list()}


def test_a_writer_that_waits_too_long_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as holder, Journal(path, busy_timeout_s=0.01) as impatient:
        kept = add(holder)
        with holder.atomic():  # another process is in the middle of a write
            with pytest.raises(JournalError, match="locked") as info:
                add(impatient)
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert impatient.get(kept).state is PostState.QUEUED  # readers never wait
        assert [p.post_id for p in impatient.list()] == [kept]
        add(impatient)  # and it works again once the lock is free


def test_a_write_waiting_too_long_for_a_post_gets_a_clear_error(journal_target: str) -> None:
    with Journal(journal_target) as holder, \
            Journal(journal_target, busy_timeout_s=0.05) as impatient:  # fmt: skip
        kept = add(holder)
        with holder.atomic():  # another worker in the middle of changing this post
            holder.get(kept)
            with pytest.raises(JournalError, match="locked"):
                impatient.transition(kept, PostState.CANCELLED)
            assert impatient.get(kept).state is PostState.QUEUED  # readers never wait
        assert impatient.transition(kept, PostState.CANCELLED).state is PostState.CANCELLED
