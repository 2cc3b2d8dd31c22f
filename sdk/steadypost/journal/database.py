"""The journal: a local SQLite record of every post and of what happened to it.

Durability, and what survives ``kill -9``
-----------------------------------------
* Every method that writes runs ONE ``BEGIN IMMEDIATE`` transaction and returns
  only after it committed. The file is in WAL mode with ``synchronous=FULL``,
  so a commit is fsynced: it survives the process being killed (``kill -9``),
  an OS crash and a power cut (on a disk that honours fsync). A transaction cut
  short leaves nothing behind: a post is always in its last committed state.
* Intent is committed before I/O. The uploader claims a post (``uploading``,
  with a lease) before its first request, checkpoints the upload URL before
  sending bytes to it, and records an ``unconfirmed`` state before it can
  learn whether a publish went through. A crash between two steps therefore
  repeats at most one step, and the platform flows make every step safe to
  repeat.
* A dead worker's post is not stuck. When the worker's process is gone
  (``kill -9``, a crash, a reboot), :meth:`Journal.claim` and
  :meth:`Journal.due` see it at once (a lock file per process beside the
  journal, which the kernel lets go of when the process ends: see
  :mod:`steadypost.journal.owners`) and hand the post to another worker,
  which resumes from the last checkpointed upload URL and offset. A worker
  whose process lives on (stopped, hung) keeps its lease until it expires
  after ``lease_s`` seconds.
* One post per file, site and account: :meth:`Journal.add` joins the post
  the same file already has (see :meth:`Journal.add_or_join`), in the same
  transaction as the check, behind a unique index.
* Writers in several processes (the CLI and the daemon) queue on SQLite's
  write lock for up to ``busy_timeout_s`` instead of failing or interleaving.
* The file is private (created 0600, its directory 0700) and never
  overwritten: a corrupt file, or one that is not a steadypost journal, is
  refused with :class:`JournalCorruptError` and left exactly as it was.

Errors
------
Every failure is a :class:`~steadypost.errors.JournalError`, with the sqlite3
or OS exception kept as ``__cause__``: :class:`JournalCorruptError`,
:class:`~steadypost.errors.SchemaTooNewError`, :class:`PostNotFoundError`,
:class:`PostExistsError`, :class:`~steadypost.errors.IllegalTransitionError`,
:class:`~steadypost.errors.LeaseHeldError`. A full disk or an unwritable
directory gives a plain ``JournalError`` saying so; nothing committed before
is lost. Passing a wrong *argument* (an unknown field, a negative offset)
raises ``TypeError``/``ValueError`` as usual in Python.

Threads and async
-----------------
One :class:`Journal` may be shared by the threads of a process; an internal
lock serialises its use of the connection. From async code call it through
``asyncio.to_thread`` and never hold :meth:`Journal.atomic` across an
``await``. After ``fork()`` open a new ``Journal`` in the child.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from steadypost.errors import (
    JournalCorruptError,
    JournalError,
    PostExistsError,
    PostNotFoundError,
    SchemaTooNewError,
)
from steadypost.journal.codec import new_post_id
from steadypost.journal.leases import DEFAULT_RETENTION_S, ScheduleAPI
from steadypost.journal.migrations import APPLICATION_ID, migrate
from steadypost.journal.owners import describe_owner, make_owner, owner_pid
from steadypost.journal.posts import DEFAULT_LEASE_S, EVENT_KINDS, AddResult, Params
from steadypost.journal.redact import redact_url
from steadypost.paths import default_journal_path

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "EVENT_KINDS",
    "AddResult",
    "Journal",
    "JournalCorruptError",
    "PostExistsError",
    "PostNotFoundError",
    "SchemaTooNewError",
    "describe_owner",
    "make_owner",
    "new_post_id",
    "owner_pid",
    "redact_url",
]

DEFAULT_BUSY_TIMEOUT_S = 10.0
"""How long a write waits for another process's write to finish."""

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


class Journal(ScheduleAPI):
    """The SQLite journal of posts and events; see the module docstring.

    ``path`` defaults to :func:`steadypost.paths.default_journal_path`; missing
    directories are created (0700) and a new file is created 0600. ``clock``
    returns UTC epoch seconds and stamps every row and event. Use it as a
    context manager, or call :meth:`close`.

    Posts: :meth:`add`, :meth:`add_or_join`, :meth:`get`, :meth:`list`,
    :meth:`events`, :meth:`record`, :meth:`transition`, :meth:`checkpoint`.
    Workers: :meth:`claim`, :meth:`renew`, :meth:`release`, :meth:`due`,
    :meth:`next_due_at`, :meth:`end_orphaned_leases`. Housekeeping:
    :meth:`counts`, :meth:`purge`, :meth:`check`, :meth:`atomic`. Hosts: :meth:`get_host_state`,
    :meth:`put_host_state`, :meth:`update_host_state`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        if not (isinstance(busy_timeout_s, (int, float)) and math.isfinite(busy_timeout_s)
                and busy_timeout_s >= 0):
            raise ValueError(f"busy_timeout_s must be >= 0 seconds, not {busy_timeout_s!r}")
        self._path = Path(os.path.abspath(path if path is not None else default_journal_path()))
        self._clock = clock
        self._busy_timeout_s = float(busy_timeout_s)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
        with self._translated("open"):
            self._conn = self._open()

    # --- the one boundary where sqlite3 and OS errors become JournalError ----------------

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise self._error_for(exc, action) from exc

    def _error_for(self, exc: sqlite3.Error | OSError, action: str) -> JournalError:
        where = f"journal {self._path}"
        if isinstance(exc, OSError):
            return JournalError(
                f"cannot {action} {where}: {exc.strerror or exc} "
                f"(is {self._path.parent} a directory this user can write to?)"
            )
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

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            os.close(os.open(self._path, flags, 0o600))
        conn = sqlite3.connect(
            self._path.as_uri() + "?mode=rw",  # never let SQLite create or replace the file
            uri=True,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self._identify(conn)  # before anything writes to a file that may not be ours
            mode = _switch_to_wal(conn, self._busy_timeout_s)
            if mode != "wal":
                raise JournalError(f"journal {self._path}: cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, now=self._clock(), where=f"journal {self._path}")
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
            f"{self._path} is an SQLite database of another application, not a steadypost "
            "journal; it was left untouched"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self._path} is closed")
        return self._conn

    def _rows(self, sql: str, params: Params = ()) -> builtins.list[Any]:
        with self._lock, self._translated("read"):
            return self._connection().execute(sql, params).fetchall()

    def _run(self, sql: str, params: Params = ()) -> int:
        with self._lock, self._translated("write to"):
            return self._connection().execute(sql, params).rowcount

    def _quietly(self, sql: str) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute(sql)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``)."""
        return int(self._rows("PRAGMA user_version")[0][0])

    def close(self) -> None:
        """Close the connection; idempotent. Everything committed stays on disk."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._translated("close"):
                    conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self._path)!r})"

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """A ``BEGIN IMMEDIATE`` transaction: commit on success, roll back on error.

        Every public method already runs in its own transaction; use this to group
        several so other processes see all or nothing. Nested use joins the outer
        transaction (through a savepoint, so an inner error caught inside the outer
        block undoes only the inner part). Other threads wait while it is held:
        keep it short and never span an ``await``.
        """
        with self._lock:
            conn = self._connection()
            if self._depth:
                name = f"nested_{self._depth}"
                with self._translated("write to"):
                    conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    self._quietly(f"ROLLBACK TO {name}")
                    self._quietly(f"RELEASE {name}")
                    raise
                finally:
                    self._depth -= 1
                with self._translated("write to"):
                    conn.execute(f"RELEASE {name}")
                return
            with self._translated("start writing to"):
                conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                with self._translated("commit to"):
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    self._quietly("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def check(self) -> None:
        """Run SQLite's integrity and foreign-key checks; ``JournalCorruptError`` on a problem."""
        problems = [row[0] for row in self._rows("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"dangling row {tuple(row)}" for row in self._rows("PRAGMA foreign_key_check")]
        if problems:
            raise JournalCorruptError(f"journal {self._path} failed its check: {problems[:5]}")
