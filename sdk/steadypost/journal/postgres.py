"""The PostgreSQL engine: one journal for a fleet of daemons on many machines.

``Journal("postgresql://user@db.example.com/steadypost")`` (or
``$STEADYPOST_JOURNAL``) keeps the same tables as the SQLite file in that
database, in the connection's ``search_path`` (choose a schema with
``?options=-csearch_path%3Dsteadypost``). It needs psycopg 3, an optional
extra: ``pip install 'steadypost[postgres]'``.

* Each write is one transaction at READ COMMITTED. Rows a write reads are
  locked first (``SELECT ... FOR UPDATE``), so two workers never interleave
  changes to one post or one host's state; claims take due posts with
  ``FOR UPDATE SKIP LOCKED`` and never wait for each other.
* A lock waited for longer than ``busy_timeout_s`` (``lock_timeout``) is an
  error, as SQLite's busy timeout is.
* A connection cut between transactions (the server restarted) is opened
  again at the next call; one cut inside a transaction fails that call, and
  nothing of it was committed.
* Migrations run each in one transaction, under an advisory lock, so many
  workers starting at once migrate a new database once.
* Owner lock files (:mod:`steadypost.journal.owners`) go in a per-user local
  directory, ``<data dir>/postgresql/<server>-<database>-<hash>.owners/``, so
  a dead process's lease on this machine is still taken over at once.

The password never leaves the URL given: it is not shown in messages
(:attr:`~steadypost.journal.engine.Engine.location`) nor used in file names.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from typing import Any

from steadypost.errors import JournalCorruptError, JournalError, SchemaTooNewError
from steadypost.journal.dialect import POSTGRES
from steadypost.journal.engine import Engine, Params
from steadypost.journal.migrations import (
    APPLICATION_ID,
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    postgres_step,
)
from steadypost.paths import data_dir

#: The comment on ``schema_migrations`` that marks a database's tables as a journal's.
MARK = "steadypost journal"
_OURS = ("posts", "events", "hosts", "workers")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise JournalError(
            "a postgresql:// journal needs psycopg 3: pip install 'steadypost[postgres]'"
        ) from exc
    return psycopg


@functools.lru_cache(maxsize=512)
def pyformat(sql: str) -> str:
    """``sql`` with ``?`` and ``:name`` parameters as psycopg's ``%s`` and ``%(name)s``.

    Quoted strings and identifiers are left alone, ``::`` casts too, and a
    literal ``%`` is doubled.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = i + 1
            while True:
                end = sql.index(c, end)
                if end + 1 < n and sql[end + 1] == c:
                    end += 2  # a doubled quote inside the string
                    continue
                break
            out.append(sql[i : end + 1])
            i = end + 1
            continue
        if c == "?":
            out.append("%s")
        elif c == "%":
            out.append("%%")
        elif c == ":" and (i == 0 or sql[i - 1] != ":") and (m := _NAME.match(sql, i + 1)):
            out.append(f"%({m.group()})s")
            i = m.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


class _Migrator:
    """What a callable migration step gets: ``execute(sql, params)`` with ``?`` parameters."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self._conn.execute(pyformat(sql), params) if params else self._conn.execute(sql)


class PostgresEngine(Engine):
    """A journal in a PostgreSQL database (see the module docstring)."""

    dialect = POSTGRES

    def __init__(self, url: str, *, clock: Callable[[], float], busy_timeout_s: float) -> None:
        psycopg = _psycopg()
        rest = url.split("://", 1)[1]
        self._url = "postgresql://" + rest  # postgres:// and postgresql+psycopg:// too
        try:
            info = psycopg.conninfo.conninfo_to_dict(self._url)
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"not a PostgreSQL URL ({exc})") from None
        server = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
        database = str(info.get("dbname") or info.get("user") or "")
        user = f"{info['user']}@" if info.get("user") else ""
        settled = sorted((k, str(v)) for k, v in info.items() if k != "password")
        import hashlib  # here: `steadypost list` on SQLite starts without OpenSSL

        digest = hashlib.sha256(repr(settled).encode()).hexdigest()[:12]
        label = _SAFE.sub("_", f"{server}-{database}").strip("_")
        super().__init__(
            path=data_dir() / "postgresql" / f"{label}-{digest}",
            location=f"postgresql://{user}{server}/{database}", clock=clock,
        )  # fmt: skip
        self._psycopg = psycopg
        self._errors = (psycopg.Error, OSError)
        self._busy_timeout_s = busy_timeout_s

    def _usable(self, conn: Any) -> bool:
        return not (conn.closed or conn.broken)

    def _execute(self, conn: Any, sql: str, params: Params) -> Any:
        return conn.execute(pyformat(sql), params) if params else conn.execute(sql)

    def _error_for(self, exc: BaseException, action: str) -> JournalError:
        where = f"journal {self.location}"
        errors = self._psycopg.errors
        if isinstance(exc, errors.LockNotAvailable):
            return JournalError(
                f"cannot {action} {where}: another worker kept a row locked for over "
                f"{self._busy_timeout_s:g} s"
            )
        if isinstance(exc, errors.DiskFull):
            return JournalError(f"cannot {action} {where}: the database server's disk is full "
                                f"({exc}); nothing of this step was saved")  # fmt: skip
        if isinstance(exc, errors.InsufficientPrivilege):
            return JournalError(f"cannot {action} {where}: {exc} (may this database user "
                                "create and change tables there?)")  # fmt: skip
        if isinstance(exc, self._psycopg.OperationalError):
            return JournalError(f"cannot {action} {where}: {exc} (is the PostgreSQL server "
                                "running and reachable from here?)")  # fmt: skip
        return JournalError(f"cannot {action} {where}: {exc}")

    def _connect(self) -> Any:
        conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        try:
            conn.execute(f"SET lock_timeout = {max(1, round(self._busy_timeout_s * 1000))}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    # --- migrations -----------------------------------------------------------------------

    def _version(self, conn: Any) -> int:
        """The schema version (0: no journal here yet); refuses another application's tables."""
        exists, mark, foreign = conn.execute(
            "SELECT to_regclass('schema_migrations') IS NOT NULL,"
            " obj_description(to_regclass('schema_migrations'), 'pg_class'),"
            " (SELECT count(*) FROM unnest(%s::text[]) AS t(name)"
            "  WHERE to_regclass(t.name) IS NOT NULL)",
            (list(_OURS),),
        ).fetchone()
        if (exists and mark != MARK) or (not exists and foreign):
            raise JournalCorruptError(
                f"{self.location} has tables of another application (posts, events, hosts or "
                "schema_migrations), not a steadypost journal; it was left untouched: use "
                "another database or schema (?options=-csearch_path%3Dsteadypost)"
            )
        if not exists:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                   .fetchone()[0])  # fmt: skip

    def _migrate(self, conn: Any) -> None:
        found = self._version(conn)
        if found > LATEST_VERSION:
            raise SchemaTooNewError(
                f"journal {self.location} has schema version {found}, but this steadypost "
                f"only knows up to {LATEST_VERSION}; upgrade steadypost to use it (the journal "
                "was left untouched)"
            )
        for migration in MIGRATIONS:
            if found < migration.version:
                self._apply(conn, migration)
                found = migration.version

    def _apply(self, conn: Any, migration: Migration) -> None:
        # A session lock taken before BEGIN, so the transaction's catalog lookups start
        # after the previous holder's commit (a transaction-long lock taken inside it would
        # leave it with the catalog as it was before the wait).
        conn.execute("SELECT pg_advisory_lock(%s)", (APPLICATION_ID,))
        try:
            self._apply_locked(conn, migration)
        finally:
            with contextlib.suppress(self._psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (APPLICATION_ID,))

    def _apply_locked(self, conn: Any, migration: Migration) -> None:
        conn.execute("BEGIN")
        try:
            if self._version(conn) >= migration.version:  # another worker just did it
                conn.execute("ROLLBACK")
                return
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY,"
                " description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            conn.execute(f"COMMENT ON TABLE schema_migrations IS '{MARK}'")
            step = postgres_step(migration)
            if callable(step):
                step(_Migrator(conn))
            else:
                for statement in step:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at)"
                " VALUES (%s, %s, %s)", (migration.version, migration.description, self.clock()),
            )  # fmt: skip
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(self._psycopg.Error):
                conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The highest migration recorded in ``schema_migrations``."""
        return int(self.rows("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0])

    def check(self) -> None:
        """The schema is current and every event belongs to a post; else ``JournalCorruptError``."""
        version = self.schema_version
        dangling = self.rows("SELECT count(*) FROM events e WHERE NOT EXISTS"
                             " (SELECT 1 FROM posts p WHERE p.post_id = e.post_id)")[0][0]
        if version != LATEST_VERSION or dangling:
            raise JournalCorruptError(
                f"journal {self.location} failed its check: schema version {version}, "
                f"{dangling} dangling event(s)"
            )

