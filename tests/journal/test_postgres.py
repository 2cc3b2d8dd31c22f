"""What only a journal shared by several machines does: PostgreSQL claims, placement, the URL.

The contract common to both backends is in the other files of this folder (each runs on
SQLite and on PostgreSQL); this one covers what PostgreSQL adds: claims that never wait
for each other (``FOR UPDATE SKIP LOCKED``), posts that record where their file can be
read, a cut connection opened again, the password kept out of sight, and how a journal
target names its backend.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from journals import child_env, raw_execute
from steadypost.errors import JournalError, LeaseHeldError, PostNotFoundError
from steadypost.journal import Journal
from steadypost.models import FileIdentity, PostState

SITE = "https://uploads.example/files/"


def add(journal: Journal, path: str | Path, n: int = 0) -> str:
    return journal.add(path=path, endpoint=SITE, identity=FileIdentity(10, n)).post_id


def test_claims_at_the_same_moment_take_different_posts_without_waiting(pg_url: str) -> None:
    with Journal(pg_url) as setup:
        ids = [add(setup, f"/v/{i}.mp4", i) for i in range(3)]
    with Journal(pg_url) as a, Journal(pg_url, busy_timeout_s=0.2) as b:
        with a.atomic():  # a is in the middle of its claim of the first post...
            mine = a.claim(owner="a")
            assert mine is not None
            started = time.monotonic()
            theirs = b.claim(owner="b")  # ... b passes over it instead of waiting
            assert time.monotonic() - started < 0.2
            assert theirs is not None
            assert theirs.post_id != mine.post_id
        assert {mine.post_id, theirs.post_id} < set(ids)
        # Claiming by id is a user's explicit ask: it waits for the row, then says who holds it.
        with pytest.raises(LeaseHeldError, match="being uploaded by"):
            b.claim(owner="b", post_id=mine.post_id)


def test_a_post_is_uploaded_on_the_host_that_added_it(pg_url: str, tmp_path: Path) -> None:
    with Journal(pg_url, host="laptop") as laptop, Journal(pg_url, host="server") as server:
        post_id = add(laptop, tmp_path / "clip.mp4")
        post = laptop.get(post_id)
        assert (post.upload_host, post.shared_prefix) == ("laptop", None)
        assert server.claim(owner="server-worker") is None  # its file is not there
        with pytest.raises(LeaseHeldError, match="host laptop"):
            server.claim(owner="server-worker", post_id=post_id)
        claimed = laptop.claim(owner="laptop-worker")
        assert claimed is not None
        assert claimed.post_id == post_id


def test_a_post_under_a_shared_folder_goes_to_any_worker_that_mounts_it(
    pg_url: str, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    elsewhere = tmp_path / "not-mounted"
    with Journal(pg_url, host="a", shared_paths=[share]) as a, \
            Journal(pg_url, host="b", shared_paths=[share]) as b, \
            Journal(pg_url, host="c") as c, \
            Journal(pg_url, host="d", shared_paths=[elsewhere]) as d:  # fmt: skip
        post_id = add(a, share / "day1" / "clip.mp4")
        post = a.get(post_id)
        assert (post.upload_host, post.shared_prefix) == (None, f"{share}/")
        assert c.claim(owner="c") is None  # does not mount the share
        assert d.claim(owner="d") is None  # its share is another folder
        claimed = b.claim(owner="b")  # another host that mounts it
        assert claimed is not None
        assert claimed.post_id == post_id


def test_a_shared_folder_that_is_not_mounted_now_claims_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    with Journal(pg_url, host="a", shared_paths=[share]) as a:
        add(a, share / "clip.mp4")
    share.rmdir()  # unmounted on this worker
    with Journal(pg_url, host="b", shared_paths=[share]) as b:
        assert b.claim(owner="b") is None
        share.mkdir()
        assert b.claim(owner="b") is not None


def test_an_sqlite_journal_records_no_host(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path, host="laptop") as laptop, Journal(path, host="other") as other:
        post_id = add(laptop, tmp_path / "clip.mp4")
        assert (laptop.get(post_id).upload_host, laptop.shared) == (None, False)
        assert other.claim(owner="o") is not None  # one machine's disk: every process reads it


def test_a_cut_connection_is_opened_again_between_transactions(pg_url: str) -> None:
    with Journal(pg_url) as j:
        post_id = add(j, "/v/a.mp4")
        [(pid,)] = j._rows("SELECT pg_backend_pid()")
        raw_execute(pg_url, f"SELECT pg_terminate_backend({pid})")
        time.sleep(0.1)
        with pytest.raises(JournalError, match="reachable"):
            j.get(post_id)  # this call learns of it...
        assert j.get(post_id).state is PostState.QUEUED  # ... the next one reconnects
        [(new_pid,)] = j._rows("SELECT pg_backend_pid()")
        assert new_pid != pid


def test_the_password_is_never_shown(postgres_server: object, pg_url: str) -> None:
    with_password = pg_url.replace("steadypost@", "steadypost:s3cr3t-pw@")
    with Journal(with_password) as j:
        assert "s3cr3t" not in j.location
        assert "s3cr3t" not in repr(j)
        assert "s3cr3t" not in str(j.path)
        with pytest.raises(PostNotFoundError) as info:
            j.get("nope")
        assert "s3cr3t" not in str(info.value)
    down = with_password.rsplit(":", 1)[0] + ":1/x"  # nothing listens on port 1
    with pytest.raises(JournalError) as refused:
        Journal(down)
    assert "s3cr3t" not in str(refused.value)


def test_threads_of_one_process_share_its_connection_safely(pg_url: str) -> None:
    with Journal(pg_url) as j:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(20):
                    add(j, f"/t{n}/{i}.mp4", i)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert j.counts()[PostState.QUEUED] == 80


@pytest.mark.parametrize(
    ("target", "backend"),
    [("journal.sqlite3", "sqlite"), ("sqlite:///rel.sqlite3", "sqlite"),
     ("sqlite:////{tmp}/abs.sqlite3", "sqlite")],
)  # fmt: skip
def test_a_path_or_sqlite_url_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, backend: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with Journal(target.format(tmp=str(tmp_path).lstrip("/"))) as j:
        assert j.backend == backend
        assert j.path.parent == tmp_path
        assert j.location == str(j.path)


def test_unknown_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown journal URL scheme 'mysql'"):
        Journal("mysql://db/x")


def test_the_journal_comes_from_the_environment_when_none_is_given(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYPOST_JOURNAL", pg_url)
    with Journal() as j:
        assert (j.backend, j.location) == ("postgresql", pg_url)


def test_psycopg_is_imported_only_for_a_postgresql_journal(tmp_path: Path) -> None:
    """It is an optional extra: an SQLite journal (and the daemon, the CLI) never loads it."""
    code = (
        "import sys\n"
        "from steadypost import Journal\n"
        "import steadypost.daemon, steadypost.cli.main\n"
        f"Journal({str(tmp_path / 'j.sqlite3')!r}).close()\n"
        "print('psycopg' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=child_env())  # fmt: skip
    assert out.stdout.split() == ["False"]


def test_without_psycopg_a_postgresql_journal_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(JournalError, match=r"pip install 'steadypost\[postgres\]'"):
        Journal("postgresql://me@db.example/steadypost")
