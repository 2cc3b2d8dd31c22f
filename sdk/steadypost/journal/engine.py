"""The journal's backend: one connection, its transactions, and the one error boundary.

An :class:`Engine` is what :class:`~steadypost.journal.Journal` is composed
of, one per database: :class:`~steadypost.journal.sqlite.SQLiteEngine` for a
file (the default) and :class:`~steadypost.journal.postgres.PostgresEngine`
for ``postgresql://`` URLs, chosen by :func:`open_engine`. The post, lease
and host SQL above it is written once and runs through three methods:
:meth:`Engine.rows`, :meth:`Engine.run` and :meth:`Engine.atomic`, where every
database and OS exception becomes a :class:`~steadypost.errors.JournalError`
(with the original as ``__cause__``).

Transactions: :meth:`Engine.atomic` is one transaction (SQLite's ``BEGIN
IMMEDIATE``, PostgreSQL's ``BEGIN``) committed on success and rolled back on
error; nested use joins it through a savepoint. One engine serves the threads
of a process one at a time (an internal lock), as one connection must.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from steadypost.errors import JournalError
from steadypost.journal.dialect import Dialect

Params: TypeAlias = "Sequence[Any] | Mapping[str, Any]"

#: The environment variable naming the journal when none is given (a path or a URL).
JOURNAL_ENV = "STEADYPOST_JOURNAL"


class Engine:
    """One database connection, as the journal's components use it (see the module docstring).

    Subclasses provide the connection (``_connect``), how to run one
    statement (``_execute``), which exceptions are theirs (``_errors``) and
    what they mean (``_error_for``).
    """

    dialect: Dialect
    _errors: tuple[type[BaseException], ...] = (OSError,)
    _begin = "BEGIN"

    def __init__(self, *, path: Path, location: str, clock: Callable[[], float]) -> None:
        self.path = path
        """A local path that stands for this journal (owner lock files go beside it)."""
        self.location = location
        """What people are shown: the file, or the URL without its password."""
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Any = None

    # --- what subclasses provide ----------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    def _execute(self, conn: Any, sql: str, params: Params) -> Any:
        raise NotImplementedError

    def _error_for(self, exc: BaseException, action: str) -> JournalError:
        raise NotImplementedError

    def _usable(self, conn: Any) -> bool:
        """Whether an open connection still works (PostgreSQL's may have been cut)."""
        return True

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    def check(self) -> None:
        raise NotImplementedError

    # --- the boundary ----------------------------------------------------------------------

    @contextlib.contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """Run the block; a database or OS exception in it leaves as a ``JournalError``."""
        try:
            yield
        except JournalError:
            raise
        except self._errors as exc:
            raise self._error_for(exc, action) from exc

    def open(self) -> None:
        with self.translated("open"):
            self._conn = self._connect()

    def connection(self) -> Any:
        if self._conn is None:
            raise JournalError(f"journal {self.location} is closed")
        if self._depth == 0 and not self._usable(self._conn):
            # A cut connection (the server restarted) is opened again between transactions.
            with contextlib.suppress(*self._errors):
                self._conn.close()
            with self.translated("reconnect to"):
                self._conn = self._connect()
        return self._conn

    def rows(self, sql: str, params: Params = ()) -> builtins.list[Any]:
        """The rows of one query."""
        with self._lock, self.translated("read"):
            return list(self._execute(self.connection(), sql, params).fetchall())

    def run(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self._lock, self.translated("write to"):
            return int(self._execute(self.connection(), sql, params).rowcount)

    def _quietly(self, sql: str) -> None:
        with contextlib.suppress(*self._errors):
            self._execute(self.connection(), sql, ())

    @property
    def in_transaction(self) -> bool:
        """Whether this thread's journal work is inside :meth:`atomic` now."""
        return self._depth > 0

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (see the module docstring); nested use joins it by a savepoint."""
        with self._lock:
            conn = self.connection()
            if self._depth:
                name = f"nested_{self._depth}"
                with self.translated("write to"):
                    self._execute(conn, f"SAVEPOINT {name}", ())
                self._depth += 1
                try:
                    yield
                except BaseException:
                    self._quietly(f"ROLLBACK TO {name}")
                    self._quietly(f"RELEASE {name}")
                    raise
                finally:
                    self._depth -= 1
                with self.translated("write to"):
                    self._execute(conn, f"RELEASE {name}", ())
                return
            with self.translated("start writing to"):
                self._execute(conn, self._begin, ())
            self._depth = 1
            try:
                yield
                with self.translated("commit to"):
                    self._execute(conn, "COMMIT", ())
            except BaseException:
                self._quietly("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self.translated("close"):
                    conn.close()
