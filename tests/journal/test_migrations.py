"""Schema migrations: from an empty file, from every earlier version, and refusals."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from journals import is_postgres, raw_execute
from steadypost.errors import JournalCorruptError, JournalError
from steadypost.journal import Journal, SchemaTooNewError, migrations, postgres
from steadypost.journal.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    migrate,
    schema_version,
)
from steadypost.models import FileIdentity, PostState

T0 = 1_700_000_000.0


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = raw(tmp_path / "raw.sqlite3")
    yield c
    c.close()


def tables(c: sqlite3.Connection) -> set[str]:
    rows = c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def ledger(c: sqlite3.Connection) -> list[tuple[int, float]]:
    sql = "SELECT version, applied_at FROM schema_migrations ORDER BY version"
    return c.execute(sql).fetchall()


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST_VERSION == len(MIGRATIONS) >= 2
    assert all(m.description for m in MIGRATIONS)


@pytest.mark.parametrize("precreate", [True, False], ids=["empty-file", "no-file"])
def test_a_new_journal_gets_every_migration(tmp_path: Path, precreate: bool) -> None:
    path = tmp_path / "journal.sqlite3"
    if precreate:
        path.touch()
    with Journal(path, clock=lambda: T0) as j:
        assert j.schema_version == LATEST_VERSION
    c = raw(path)
    try:
        assert schema_version(c) == LATEST_VERSION
        assert {"posts", "events", "hosts", "schema_migrations"} <= tables(c)
        assert ledger(c) == [(m.version, T0) for m in MIGRATIONS]
        assert c.execute("PRAGMA application_id").fetchone()[0] == migrations.APPLICATION_ID
    finally:
        c.close()


@pytest.mark.parametrize("version", range(1, LATEST_VERSION))
def test_upgrade_from_every_earlier_version_keeps_data(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite3"
    c = raw(path)
    c.execute("PRAGMA journal_mode = WAL")
    assert migrate(c, now=T0, target=version) == version
    assert ("hosts" in tables(c)) == (version >= 2)
    # A post as an old steadypost would have written it (only v1 columns exist then).
    c.execute(
        "INSERT INTO posts (post_id, platform, endpoint, path, size, mtime_ns, metadata,"
        ' state, upload_url, "offset", created_at, updated_at, extra)'
        " VALUES ('old-1', 'tus', 'https://e/', '/v.mp4', 100, 7, '{\"caption\":\"hi\"}',"
        " 'waiting', 'https://e/1', 40, ?, ?, '{}')",
        (T0, T0),
    )
    c.execute(
        "INSERT INTO events (post_id, at, kind, data) VALUES ('old-1', ?, 'state', ?)",
        (T0, '{"from":null,"to":"queued"}'),
    )
    c.close()

    with Journal(path, clock=lambda: T0 + 1) as j:
        assert j.schema_version == LATEST_VERSION
        post = j.get("old-1")
        assert (post.state, post.upload_url, post.offset) == (PostState.WAITING, "https://e/1", 40)
        assert dict(post.metadata) == {"caption": "hi"}
        # v3: the file's device, inode and ctime are unknown, and so is how far it was sent.
        assert (post.identity.inode, post.identity.ctime_ns, post.sent_to) == (None, None, None)
        assert post.bytes_sent == 0
        assert [e.kind for e in j.events("old-1")] == ["state"]
        j.put_host_state("e", "breaker", {"open": False})  # the new table works
        assert [p.post_id for p in j.due()] == ["old-1"]
        j.check()
    c = raw(path)
    try:
        expected = [(m.version, T0 if m.version <= version else T0 + 1) for m in MIGRATIONS]
        assert ledger(c) == expected
    finally:
        c.close()


def test_a_newer_journal_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with Journal(path) as j:
        j.add(path="v.mp4", endpoint="https://e/", identity=FileIdentity(1, 1))
    c = raw(path)
    c.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    c.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match="upgrade steadypost") as info:
        Journal(path)
    assert isinstance(info.value, JournalError)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_a_failing_migration_rolls_back_completely(conn: sqlite3.Connection) -> None:
    broken = (*MIGRATIONS, Migration(
        LATEST_VERSION + 1, "broken", ("CREATE TABLE half_done (x)", "THIS IS NOT SQL")
    ))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, now=T0, migrations=broken)
    assert schema_version(conn) == LATEST_VERSION  # the good ones stuck
    assert "half_done" not in tables(conn)
    assert [v for v, _ in ledger(conn)] == [m.version for m in MIGRATIONS]
    assert not conn.in_transaction


def test_callable_migration_and_rerun_is_a_no_op(conn: sqlite3.Connection) -> None:
    calls: list[int] = []

    def add_column(c: sqlite3.Connection) -> None:
        calls.append(1)
        c.execute("ALTER TABLE hosts ADD COLUMN note TEXT")

    more = (*MIGRATIONS, Migration(LATEST_VERSION + 1, "callable", add_column))
    assert migrate(conn, now=T0, migrations=more) == LATEST_VERSION + 1
    assert migrate(conn, now=T0, migrations=more) == LATEST_VERSION + 1
    assert calls == [1]
    # Code that knows only the older list now refuses this journal.
    with pytest.raises(SchemaTooNewError):
        migrate(conn, now=T0)


def test_migrate_refuses_misuse(conn: sqlite3.Connection, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="numbered"):
        migrate(conn, now=T0, migrations=(MIGRATIONS[1],))
    managed = sqlite3.connect(tmp_path / "managed.sqlite3")  # default isolation level
    try:
        with pytest.raises(ValueError, match="autocommit"):
            migrate(managed, now=T0)
    finally:
        managed.close()


def open_at_once(target: str | Path, n: int) -> list[BaseException]:
    """Open (and close) the journal at ``target`` from ``n`` threads at the same moment."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            Journal(target).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_many_openers_of_a_new_journal_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    assert open_at_once(path, 6) == []
    c = raw(path)
    try:
        assert [v for v, _ in ledger(c)] == [m.version for m in MIGRATIONS]
    finally:
        c.close()


# --- PostgreSQL: the same numbered migrations, recorded in the database -----------------------


def pg_tables(url: str) -> set[str]:
    rows = raw_execute(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in rows}


def columns(target: str, table: str) -> list[str]:
    if is_postgres(target):
        sql = ("SELECT column_name FROM information_schema.columns WHERE"
               f" table_name = '{table}' ORDER BY ordinal_position")
        rows = raw_execute(target, sql)
        return [name for (name,) in rows]
    return [row[1] for row in raw_execute(target, f"PRAGMA table_info({table})")]


def test_a_new_postgres_journal_gets_every_migration_recorded(pg_url: str) -> None:
    with Journal(pg_url, clock=lambda: T0) as j:
        assert j.schema_version == LATEST_VERSION
        assert (j.backend, j.shared) == ("postgresql", True)
        assert j.location == pg_url  # (no password in it to hide)
    assert {"posts", "events", "hosts", "workers", "schema_migrations"} <= pg_tables(pg_url)
    rows = raw_execute(pg_url, "SELECT version, applied_at FROM schema_migrations ORDER BY 1")
    assert [tuple(r) for r in rows] == [(m.version, T0) for m in MIGRATIONS]
    [(mark,)] = raw_execute(pg_url, "SELECT obj_description('schema_migrations'::regclass)")
    assert mark == "steadypost journal"
    with Journal(pg_url, clock=lambda: T0 + 5):  # opening again migrates nothing
        pass
    assert len(raw_execute(pg_url, "SELECT 1 FROM schema_migrations")) == len(MIGRATIONS)


def test_both_backends_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = str(tmp_path / "j.sqlite3")
    Journal(sqlite_path).close()
    Journal(pg_url).close()
    for table in ("posts", "events", "hosts", "workers", "schema_migrations"):
        assert columns(pg_url, table) == columns(sqlite_path, table), table


def test_postgres_types_hold_64_bit_numbers_and_exact_times(pg_url: str) -> None:
    with Journal(pg_url, clock=lambda: 1_900_000_000.123456) as j:
        identity = FileIdentity(size=5 * 2**40, mtime_ns=1_900_000_000_123_456_789,
                                dev=2**64 - 1, inode=2**63 + 5, ctime_ns=-(2**62))  # fmt: skip
        post = j.add(path="/big.mp4", endpoint="https://e/", identity=identity)
        assert j.get(post.post_id).identity == identity
        assert j.get(post.post_id).created_ts == 1_900_000_000.123456


def test_postgres_tables_of_another_application_are_refused_and_left_alone(pg_url: str) -> None:
    raw_execute(pg_url, "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT)")
    raw_execute(pg_url, "INSERT INTO posts VALUES (1, 'theirs')")
    with pytest.raises(JournalCorruptError, match="another application") as info:
        Journal(pg_url)
    assert isinstance(info.value, JournalError)
    assert raw_execute(pg_url, "SELECT * FROM posts") == [(1, "theirs")]
    assert "schema_migrations" not in pg_tables(pg_url)


def test_a_newer_postgres_journal_is_refused_and_left_alone(pg_url: str) -> None:
    Journal(pg_url).close()
    raw_execute(pg_url, "INSERT INTO schema_migrations VALUES "
                        f"({LATEST_VERSION + 1}, 'from the future', 0)")  # fmt: skip
    with pytest.raises(SchemaTooNewError, match="upgrade steadypost"):
        Journal(pg_url)
    assert len(raw_execute(pg_url, "SELECT 1 FROM schema_migrations")) == LATEST_VERSION + 1


def test_a_failing_postgres_migration_rolls_back_completely(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Journal(pg_url).close()
    broken = (*MIGRATIONS, Migration(
        LATEST_VERSION + 1, "broken", ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
    ))
    monkeypatch.setattr(postgres, "MIGRATIONS", broken)
    monkeypatch.setattr(postgres, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(JournalError, match="syntax error"):
        Journal(pg_url)
    assert "half_done" not in pg_tables(pg_url)
    versions = raw_execute(pg_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]


def test_many_openers_of_a_new_postgres_journal_migrate_it_once(pg_url: str) -> None:
    assert open_at_once(pg_url, 6) == []
    versions = raw_execute(pg_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
