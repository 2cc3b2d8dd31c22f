"""The SQLite engine: a private file in WAL mode, fsynced at every commit (the default).

* Every write transaction is ``BEGIN IMMEDIATE``: it takes the file's write
  lock first, so a transaction's reads and writes are never interleaved with
  another process's, and writers queue for up to ``busy_timeout_s``.
* ``journal_mode = WAL`` and ``synchronous = FULL``: a commit survives
  ``kill -9``, an OS crash and a power cut (on a disk that honours fsync).
* The file is created 0600 (its directory 0700) and never overwritten: a
  corrupt file, or another application's SQLite file, is refused with
  :class:`~steadypost.errors.JournalCorruptError` and left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steadypost.errors import JournalCorruptError, JournalError
from steadypost.journal.dialect import SQLITE
from steadypost.journal.engine import Engine, Params
from steadypost.journal.migrations import APPLICATION_ID, migrate
from steadypost.paths import default_journal_path

# sqlite3 primary result codes (``sqlite_errorcode`` only exists from Python 3.11).
_FULL, _CORRUPT, _NOTADB, _BUSY, _LOCKED = 13, 11, 26, 5, 6
_ACCESS = frozenset({3, 8, 10, 14, 23})  # PERM, READONLY, IOERR, CANTOPEN, AUTH
_BY_MESSAGE = (
    ("disk is full", _FULL),
    ("not a database", _NOTADB),
    ("malformed", _CORRUPT),
    ("locked", _BUSY),
    ("unable to open", 14),
    ("readonly", 8),
    ("i/o error", 10),
)


def _result_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    return next((c for needle, c in _BY_MESSAGE if needle in text), None)


def _switch_to_wal(conn: sqlite3.Connection, timeout_s: float) -> str:
    """``PRAGMA journal_mode = WAL``, waiting out other first openers of a new file.

    Switching a new file to WAL needs it to itself for an instant; SQLite answers
    "locked" at once rather than calling its busy handler while other openers
    hold read locks, so this does the waiting instead (bounded by the busy timeout).
    """
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return "wal"  # the usual case: nothing to change
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if _result_code(exc) not in (_BUSY, _LOCKED) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class SQLiteEngine(Engine):
    """A journal file on this machine (see the module docstring)."""

    dialect = SQLITE
    _errors = (sqlite3.Error, OSError)
    _begin = "BEGIN IMMEDIATE"

    def __init__(
        self, path: str | os.PathLike[str] | None, *, clock: Callable[[], float],
        busy_timeout_s: float,
    ) -> None:  # fmt: skip
        file = Path(os.path.abspath(path if path is not None else default_journal_path()))
        super().__init__(path=file, location=str(file), clock=clock)
        self._busy_timeout_s = busy_timeout_s

    def _execute(self, conn: Any, sql: str, params: Params) -> Any:
        return conn.execute(sql, params)

    def _error_for(self, exc: BaseException, action: str) -> JournalError:
        where = f"journal {self.path}"
        if isinstance(exc, OSError):
            return JournalError(
                f"cannot {action} {where}: {exc.strerror or exc} "
                f"(is {self.path.parent} a directory this user can write to?)"
            )
        assert isinstance(exc, sqlite3.Error)
        code = _result_code(exc)
        if code == _FULL:
            return JournalError(
                f"cannot {action} {where}: the disk is full ({exc}). Nothing of this step "
                "was saved and everything saved before is intact: free some space and retry"
            )
        if code in (_CORRUPT, _NOTADB):
            return JournalCorruptError(
                f"{where} is corrupt or not an SQLite file ({exc}); it was left untouched: "
                "move it aside to start a new journal"
            )
        if code in (_BUSY, _LOCKED):
            return JournalError(
                f"cannot {action} {where}: another process kept it locked for over "
                f"{self._busy_timeout_s:g} s"
            )
        if code in _ACCESS:
            return JournalError(
                f"cannot {action} {where}: {exc} (can this user read and write the file, "
                "and write to its directory?)"
            )
        return JournalError(f"cannot {action} {where}: {exc}")

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            os.close(os.open(self.path, flags, 0o600))
        conn = sqlite3.connect(
            self.path.as_uri() + "?mode=rw",  # never let SQLite create or replace the file
            uri=True,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self._identify(conn)  # before anything writes to a file that may not be ours
            mode = _switch_to_wal(conn, self._busy_timeout_s)
            if mode != "wal":
                raise JournalError(f"journal {self.path}: cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, now=self.clock(), where=f"journal {self.path}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _identify(self, conn: sqlite3.Connection) -> None:
        # One statement, so one consistent snapshot while another process migrates.
        app_id, version, tables = conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id),"
            " (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        if app_id == APPLICATION_ID or (app_id == 0 and not tables and not version):
            return
        raise JournalCorruptError(
            f"{self.path} is an SQLite database of another application, not a steadypost "
            "journal; it was left untouched"
        )

    def _quietly(self, sql: str) -> None:
        conn = self._conn
        if conn is not None and (sql != "ROLLBACK" or conn.in_transaction):
            with contextlib.suppress(sqlite3.Error):
                conn.execute(sql)

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``)."""
        return int(self.rows("PRAGMA user_version")[0][0])

    def check(self) -> None:
        """SQLite's integrity and foreign-key checks; ``JournalCorruptError`` on a problem."""
        problems = [row[0] for row in self.rows("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"dangling row {tuple(row)}" for row in self.rows("PRAGMA foreign_key_check")]
        if problems:
            raise JournalCorruptError(f"journal {self.path} failed its check: {problems[:5]}")
