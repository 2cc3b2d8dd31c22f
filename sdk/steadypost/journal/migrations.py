"""The journal's schema, as numbered migrations applied in order, on SQLite and PostgreSQL.

Every journal records how far it has been migrated in its ``schema_migrations``
table (when each step was applied, for support); an SQLite file also in
``PRAGMA user_version`` (cheap to read before anything else).

Rules for whoever adds a migration:

* Append; never edit or renumber a released migration. Versions are 1, 2, 3...
* One migration runs in ONE transaction together with its bookkeeping
  (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``BEGIN`` under a transaction-long
  advisory lock), so a crash mid-migration leaves the previous version intact.
  Several processes opening the same journal at once are fine: the version is
  re-read under the lock and a step already applied is skipped.
* A step is a tuple of SQL statements, or a callable taking the connection for
  data migrations (it gets ``execute(sql, params)`` with ``?`` parameters on
  both engines). It must not COMMIT, and must not change ``journal_mode``.
* The statements are written for SQLite; :func:`postgres_statement` makes the
  PostgreSQL ones (64-bit ``BIGINT`` for ``INTEGER``, ``DOUBLE PRECISION`` for
  ``REAL``, identity columns, no ``PRAGMA``). What cannot be translated
  (triggers) is given as the migration's ``postgres`` step.
* A journal newer than this code (a version above :data:`LATEST_VERSION`)
  is refused with :class:`SchemaTooNewError`: the code never guesses at, nor
  downgrades, a schema it does not know.

Database errors pass through unchanged: :mod:`steadypost.journal` translates
them into :class:`~steadypost.errors.JournalError` at its single boundary.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from steadypost.errors import SchemaTooNewError
from steadypost.journal.codec import account_of, file_key, from_u64, loads_frozen
from steadypost.models import FileIdentity

#: ``PRAGMA application_id`` of a steadypost journal (ASCII "StPj"), so another
#: application's SQLite file is recognised and left alone.
APPLICATION_ID = 0x5374506A

MigrationStep: TypeAlias = "tuple[str, ...] | Callable[[Any], None]"


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, what it does, and the SQL (or callable)."""

    version: int
    description: str
    step: MigrationStep
    postgres: MigrationStep | None = None
    """The step on PostgreSQL, where ``step`` cannot be translated (see the module docstring)."""


_TERMINAL_SQL = "('confirmed', 'failed', 'cancelled')"

_V1_TABLES: tuple[str, ...] = (
    """
    CREATE TABLE posts (
        post_id           TEXT PRIMARY KEY NOT NULL,
        platform          TEXT NOT NULL,
        endpoint          TEXT NOT NULL,
        path              TEXT NOT NULL,
        size              INTEGER NOT NULL CHECK (size >= 0),
        mtime_ns          INTEGER NOT NULL,
        sha256            TEXT,
        metadata          TEXT NOT NULL DEFAULT '{}',
        state             TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'waiting',
                              'unconfirmed', 'confirmed', 'failed', 'cancelled')),
        upload_url        TEXT,
        "offset"          INTEGER NOT NULL DEFAULT 0 CHECK ("offset" >= 0),
        attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at   REAL,
        last_error        TEXT,
        lease_owner       TEXT,
        lease_expires_at  REAL,
        created_at        REAL NOT NULL,
        updated_at        REAL NOT NULL,
        upload_expires_at REAL,
        extra             TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX posts_by_state ON posts (state, created_at)",
    """
    CREATE TABLE events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        post_id  TEXT NOT NULL REFERENCES posts (post_id),
        at       REAL NOT NULL,
        kind     TEXT NOT NULL,
        data     TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX events_by_post ON events (post_id, event_id)",
)
# The evidence log is append-only, and an unfinished post is never deleted.
_V1_TRIGGERS: tuple[str, ...] = (
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END
    """,
    f"""
    CREATE TRIGGER posts_keep_unfinished BEFORE DELETE ON posts
    WHEN OLD.state NOT IN {_TERMINAL_SQL}
    BEGIN SELECT RAISE(ABORT, 'an unfinished post is never deleted'); END
    """,
)
_V1_POSTS_AND_EVENTS = (f"PRAGMA application_id = {APPLICATION_ID}", *_V1_TABLES, *_V1_TRIGGERS)
_V1_POSTGRES_TRIGGERS: tuple[str, ...] = (
    """
    CREATE FUNCTION steadypost_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$
    """,
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE ON events FOR EACH ROW
    EXECUTE FUNCTION steadypost_refuse('journal events are append-only')
    """,
    f"""
    CREATE TRIGGER posts_keep_unfinished BEFORE DELETE ON posts FOR EACH ROW
    WHEN (OLD.state NOT IN {_TERMINAL_SQL})
    EXECUTE FUNCTION steadypost_refuse('an unfinished post is never deleted')
    """,
)

_V2_HOSTS: tuple[str, ...] = (
    """
    CREATE TABLE hosts (
        host       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        data       TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (host, kind)
    ) WITHOUT ROWID
    """,
    # due() / next_due_at(): posts waiting for a time, and leases that may expire.
    """
    CREATE INDEX posts_by_due ON posts (next_attempt_at)
    WHERE state IN ('waiting', 'unconfirmed')
    """,
    "CREATE INDEX posts_by_lease ON posts (lease_expires_at) WHERE state = 'uploading'",
    f"CREATE INDEX posts_finished ON posts (updated_at) WHERE state IN {_TERMINAL_SQL}",
)

_V3_FILE_IDENTITY_AND_WIRE: tuple[str, ...] = (
    # The file's full identity: a file replaced by a rename has another inode, and every
    # write moves the status-change time (which, unlike the mtime, cannot be set back).
    "ALTER TABLE posts ADD COLUMN dev INTEGER",
    "ALTER TABLE posts ADD COLUMN inode INTEGER",
    "ALTER TABLE posts ADD COLUMN ctime_ns INTEGER",
    # What the post put on the wire (intent, journaled before each request body), and the
    # furthest byte of the current upload any request carried (NULL: unknown, e.g. older rows).
    "ALTER TABLE posts ADD COLUMN bytes_sent INTEGER NOT NULL DEFAULT 0 CHECK (bytes_sent >= 0)",
    "ALTER TABLE posts ADD COLUMN sent_to INTEGER CHECK (sent_to >= 0)",
)

_BLOCKING_SQL = "('queued', 'uploading', 'waiting', 'unconfirmed', 'confirmed')"


def _identity_now(path: str, journaled: FileIdentity) -> FileIdentity:
    """A file's full identity from ``stat`` if its size and mtime are still the journaled ones.

    A post journaled before migration 3 has no device, inode or ctime; its
    next run fills them in (and its key then follows, see ``_journal_posts``),
    but a repeated upload before that must find its post under the same key.
    """
    from steadypost.drivers.files import identity_of  # here: the journal starts without httpx

    try:
        now = identity_of(os.stat(path))
    except OSError:
        return journaled
    same = (now.size, now.mtime_ns) == (journaled.size, journaled.mtime_ns)
    return now if same else journaled


def _v4_one_post_per_file(conn: Any) -> None:
    """One post per (file, site, account): a key per post, and a unique index over it.

    ``file_key`` is :func:`steadypost.journal.codec.file_key` of the post;
    ``new_on_purpose`` marks a further post of the same file that the user
    asked for (``new=True``). The unique index allows one post of a key that
    is not ``new_on_purpose`` among the posts that block a new one (every
    state but failed and cancelled), so no code path can insert a twin.
    Older posts get their key here; where an older journal already holds
    twins (the bug this fixes), the oldest keeps the key's place and the
    others count as made on purpose.
    """
    conn.execute("ALTER TABLE posts ADD COLUMN file_key TEXT")
    conn.execute(
        "ALTER TABLE posts ADD COLUMN new_on_purpose INTEGER NOT NULL DEFAULT 0"
        " CHECK (new_on_purpose IN (0, 1))"
    )
    columns = "post_id, path, size, mtime_ns, dev, inode, ctime_ns, endpoint, platform, extra"
    sql = f"SELECT {columns}, state IN {_BLOCKING_SQL} FROM posts ORDER BY created_at, post_id"  # noqa: S608
    rows = conn.execute(sql).fetchall()
    placed: set[str] = set()
    for row in rows:
        post_id, path, size, mtime_ns, dev, inode, ctime_ns, endpoint, platform, extra, blocks = row
        try:
            account = account_of(loads_frozen(extra))
        except ValueError:
            account = ""
        identity = FileIdentity(size, mtime_ns, dev=from_u64(dev), inode=from_u64(inode),
                                ctime_ns=ctime_ns)  # fmt: skip
        if inode is None:  # journaled before migration 3: the file as it is now, if unchanged
            identity = _identity_now(path, identity)
        key = file_key(path=path, identity=identity, endpoint=endpoint, platform=platform,
                       account=account)  # fmt: skip
        blocks = bool(blocks)
        twin = blocks and key in placed
        if blocks:
            placed.add(key)
        conn.execute("UPDATE posts SET file_key = ?, new_on_purpose = ? WHERE post_id = ?",
                     (key, int(twin), post_id))  # fmt: skip
    conn.execute(
        "CREATE UNIQUE INDEX posts_one_per_file ON posts (file_key)"
        f" WHERE new_on_purpose = 0 AND state IN {_BLOCKING_SQL}"
    )
    conn.execute("CREATE INDEX posts_by_file_key ON posts (file_key, created_at)")


_V5_FENCING_AND_FLEET: tuple[str, ...] = (
    # Bumped at every claim: a worker's write with an older epoch changes nothing.
    "ALTER TABLE posts ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0)",
    # Where the post's file can be read: one host (NULL: any), or a prefix every worker
    # mounts (journals shared by several machines; an SQLite journal leaves both NULL).
    "ALTER TABLE posts ADD COLUMN upload_host TEXT",
    "ALTER TABLE posts ADD COLUMN shared_prefix TEXT",
    "CREATE INDEX posts_by_lease_owner ON posts (lease_owner) WHERE lease_owner IS NOT NULL",
    # The daemons working on the journal, for `steadypost status` (a heartbeat each).
    """
    CREATE TABLE workers (
        name         TEXT PRIMARY KEY NOT NULL,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        process      TEXT NOT NULL,
        started_at   REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        lease_s      REAL NOT NULL,
        stopped_at   REAL,
        data         TEXT NOT NULL DEFAULT '{}'
    )
    """,
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "posts and their append-only events", _V1_POSTS_AND_EVENTS,
              postgres=(*_V1_TABLES, *_V1_POSTGRES_TRIGGERS)),
    Migration(2, "per-host shared state (breaker, budgets) and scheduling indexes", _V2_HOSTS),
    Migration(
        3, "file identity (device, inode, ctime) and wire accounting", _V3_FILE_IDENTITY_AND_WIRE
    ),
    Migration(4, "one post per file, site and account (file_key)", _v4_one_post_per_file),
    Migration(5, "fencing epochs, where a post's file is, and the workers", _V5_FENCING_AND_FLEET),
)

LATEST_VERSION: int = MIGRATIONS[-1].version

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""


def schema_version(conn: sqlite3.Connection) -> int:
    """The journal's ``PRAGMA user_version`` (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_sequence(migrations: Sequence[Migration]) -> None:
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise ValueError(f"migrations must be numbered 1..{len(migrations)} in order")


def migrate(
    conn: sqlite3.Connection,
    *,
    now: float,
    target: int | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
    where: str = "journal",
) -> int:
    """Bring the schema up to ``target`` (default: the latest) and return the version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) and outside a
    transaction. ``now`` is recorded as ``applied_at``; ``where`` names the file in
    error messages. ``target`` below the latest is for tests that build an old
    journal. Raises :class:`SchemaTooNewError` if the journal is newer than
    ``migrations``.
    """
    if conn.isolation_level is not None or conn.in_transaction:
        raise ValueError("migrate() needs an autocommit connection outside a transaction")
    _check_sequence(migrations)
    latest = len(migrations)
    target = latest if target is None else target
    found = schema_version(conn)
    if found > latest:
        raise SchemaTooNewError(
            f"{where} has schema version {found}, but this steadypost only knows up to "
            f"{latest}; upgrade steadypost to use it (the journal was left untouched)"
        )
    for migration in migrations:
        if found < migration.version <= target:
            _apply(conn, migration, now=now)
            found = migration.version
    return schema_version(conn)


def _apply(conn: sqlite3.Connection, migration: Migration, *, now: float) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have just done it.
        if schema_version(conn) >= migration.version:
            conn.execute("ROLLBACK")
            return
        conn.execute(_LEDGER)
        if callable(migration.step):
            migration.step(conn)
        else:
            for statement in migration.step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, now),
        )
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


# --- PostgreSQL ---------------------------------------------------------------------------

_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
           "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
          (re.compile(r"\bINTEGER\b"), "BIGINT"),
          (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
          (re.compile(r"\)\s*WITHOUT ROWID"), ")"))  # fmt: skip


def postgres_statement(statement: str) -> str | None:
    """An SQLite DDL statement as PostgreSQL says it (``None``: it has no equivalent)."""
    if statement.strip().upper().startswith("PRAGMA"):
        return None
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def postgres_step(migration: Migration) -> MigrationStep:
    """What ``migration`` runs on PostgreSQL."""
    step = migration.postgres if migration.postgres is not None else migration.step
    if callable(step):
        return step
    return tuple(s for s in map(postgres_statement, step) if s is not None)
