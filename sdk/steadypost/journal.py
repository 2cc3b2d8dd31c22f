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
* A dead worker's post is not stuck: its lease expires after ``lease_s``
  seconds and :meth:`Journal.claim` hands the post to another worker, which
  resumes from the last checkpointed upload URL and offset.
* Writers in several processes (the CLI and the daemon) queue on SQLite's
  write lock for up to ``busy_timeout_s`` instead of failing or interleaving.
* The file is private (created 0600, its directory 0700) and never
  overwritten: a corrupt file, or one that is not a steadypost journal, is
  refused with :class:`JournalCorruptError` and left exactly as it was.

Errors
------
Every failure is a :class:`~steadypost.errors.JournalError`, with the sqlite3
or OS exception kept as ``__cause__``: :class:`JournalCorruptError`,
:class:`~steadypost.migrations.SchemaTooNewError`, :class:`PostNotFoundError`,
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
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from steadypost import _journal_codec as codec
from steadypost._journal_codec import make_owner, new_post_id
from steadypost._journal_redact import redact_url, sanitize
from steadypost.errors import IllegalTransitionError, JournalError, LeaseHeldError
from steadypost.migrations import APPLICATION_ID, SchemaTooNewError, migrate, schema_version
from steadypost.models import FileIdentity, JournalEvent, Post, PostState, can_transition
from steadypost.paths import default_journal_path

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "EVENT_KINDS",
    "Journal",
    "JournalCorruptError",
    "PostExistsError",
    "PostNotFoundError",
    "SchemaTooNewError",
    "make_owner",
    "new_post_id",
    "redact_url",
]

DEFAULT_BUSY_TIMEOUT_S = 10.0
"""How long a write waits for another process's write to finish."""
DEFAULT_LEASE_S = 300.0
"""How long a claimed post stays reserved without a checkpoint or renew."""
DEFAULT_RETENTION_S = 30 * 24 * 3600.0
"""How long finished posts are kept before :meth:`Journal.purge` may delete them."""
EVENT_KINDS = frozenset({"request", "response", "error", "wait", "note", "verify"})
"""Kinds accepted by :meth:`Journal.record` (``state`` events come from transitions)."""


class PostNotFoundError(JournalError):
    """No post with this id is in the journal (never added, or purged)."""


class PostExistsError(JournalError):
    """A post with this id is already in the journal (ids are idempotency keys)."""


class JournalCorruptError(JournalError):
    """The file is corrupt or is not a steadypost journal; it was left untouched."""


_EMPTY: Mapping[str, str] = MappingProxyType({})
_UP, _Q = PostState.UPLOADING, PostState.QUEUED
_FINISHED = "(" + ", ".join(f"'{s.value}'" for s in PostState if s.finished) + ")"
# When a post next needs a worker: now for queued, at lease expiry for uploading,
# else next_attempt_at. due(), claim() and next_due_at() all use this.
_DUE_AT = """CASE state WHEN 'queued' THEN updated_at
    WHEN 'uploading' THEN COALESCE(lease_expires_at, updated_at)
    ELSE COALESCE(next_attempt_at, updated_at) END"""
_ACTIVE = "state IN ('queued', 'waiting', 'unconfirmed', 'uploading')"
_IS_DUE = f"(state = 'queued' OR ({_DUE_AT}) <= :now)"
_BY_DUE = f" ORDER BY ({_DUE_AT}), created_at, post_id"
# sqlite3 primary result codes (sqlite_errorcode only exists from Python 3.11).
_FULL, _CORRUPT, _NOTADB, _BUSY, _LOCKED = 13, 11, 26, 5, 6
_ACCESS = frozenset({3, 8, 10, 14, 23})  # PERM, READONLY, IOERR, CANTOPEN, AUTH
_BY_MESSAGE = (("disk is full", _FULL), ("not a database", _NOTADB), ("malformed", _CORRUPT),
               ("locked", _BUSY), ("unable to open", 14), ("readonly", 8), ("i/o error", 10))


def _result_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    return next((c for needle, c in _BY_MESSAGE if needle in text), None)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


class Journal:
    """The SQLite journal of posts and events; see the module docstring.

    ``path`` defaults to :func:`steadypost.paths.default_journal_path`; missing
    directories are created (0700) and a new file is created 0600. ``clock``
    returns UTC epoch seconds and stamps every row and event. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self._path = Path(os.path.abspath(path if path is not None else default_journal_path()))
        self._clock = clock
        self._busy_timeout_s = _positive("busy_timeout_s", busy_timeout_s)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
        with self._translated("open"):
            self._conn = self._open()

    # --- the one boundary where sqlite3 and OS errors become JournalError -------------

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
                f"{where}: the disk is full, could not {action} ({exc}); nothing of this "
                "step was saved and everything saved before is intact: free some space"
            )
        if code in (_CORRUPT, _NOTADB):
            return JournalCorruptError(
                f"{where} is corrupt or not an SQLite file ({exc}); it was left untouched: "
                "move it aside to start a new journal"
            )
        if code in (_BUSY, _LOCKED):
            return JournalError(
                f"{where} stayed locked by another process for over "
                f"{self._busy_timeout_s:g} s; could not {action}"
            )
        if code in _ACCESS:
            return JournalError(
                f"cannot {action} {where}: {exc} (can this user write the file "
                "and its directory?)"
            )
        return JournalError(f"{where}: could not {action}: {exc}")

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            os.close(os.open(self._path, flags, 0o600))
        conn = sqlite3.connect(
            self._path.as_uri() + "?mode=rw",  # never create: the file exists by now
            uri=True,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self._identify(conn)  # before anything writes to a file that may not be ours
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal {self._path}: cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, now=self._clock(), where=f"journal {self._path}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _identify(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == APPLICATION_ID or (app_id == 0 and not tables and not schema_version(conn)):
            return
        raise JournalCorruptError(
            f"{self._path} is an SQLite database of another application, not a steadypost "
            "journal; it was left untouched"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self._path} is closed")
        return self._conn

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        with self._lock, self._translated("read"):
            return self._connection().execute(sql, params).fetchall()

    def _run(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with self._lock, self._translated("write"):
            return self._connection().execute(sql, params).rowcount

    def _rollback(self, sql: str) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute(sql)

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    @property
    def schema_version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``)."""
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
        several (e.g. read host state and write it back) so other processes see all
        or nothing. Nested use joins the outer transaction through a savepoint. Other
        threads wait while it is held, so keep it short and never span an ``await``.
        """
        with self._lock:
            conn = self._connection()
            if self._depth:
                name = f"nested_{self._depth}"
                with self._translated("write"):
                    conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    self._rollback(f"ROLLBACK TO {name}")
                    self._rollback(f"RELEASE {name}")
                    raise
                finally:
                    self._depth -= 1
                with self._translated("write"):
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
                    self._rollback("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def check(self) -> None:
        """Run SQLite's integrity and foreign-key checks; raise ``JournalCorruptError``."""
        problems = [row[0] for row in self._rows("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"dangling row {row}" for row in self._rows("PRAGMA foreign_key_check")]
        if problems:
            raise JournalCorruptError(f"journal {self._path} failed its check: {problems[:5]}")

    # --- internal row helpers --------------------------------------------------------------

    def _load(self, post_id: str) -> Post:
        rows = self._rows(codec.SELECT_POSTS + " WHERE post_id = ?", (post_id,))
        if not rows:
            raise PostNotFoundError(f"no post {post_id!r} in journal {self._path}")
        return codec.post_from_row(rows[0])

    def _event(self, post_id: str, at: float, kind: str, data: Mapping[str, Any]) -> None:
        self._run(
            "INSERT INTO events (post_id, at, kind, data) VALUES (?, ?, ?, ?)",
            (post_id, at, kind, codec.dumps(sanitize(data))),
        )

    def _write(self, post: Post, values: dict[str, Any]) -> None:
        """UPDATE a post; a new upload URL starts at offset 0 unless one is given."""
        if values.get("upload_url", post.upload_url) != post.upload_url:
            values.setdefault("offset", 0)
        size = values.get("size", post.identity.size)
        if values.get("offset", post.offset) > size:
            raise ValueError(f"offset {values.get('offset', post.offset)} is beyond size {size}")
        columns = ", ".join(f'"{name}" = ?' for name in values)  # names are whitelisted
        self._run(f"UPDATE posts SET {columns} WHERE post_id = ?", (*values.values(), post.post_id))  # noqa: S608

    def _require_lease(self, post: Post, owner: str) -> None:
        if post.lease_owner != owner:
            raise LeaseHeldError(
                f"post {post.post_id} ({post.state.value}) is not leased by {owner}; "
                f"lease holder: {post.lease_owner or 'nobody'}"
            )
