"""Which engine a journal target names: a file path, ``sqlite:///...`` or ``postgresql://...``."""

from __future__ import annotations

import os
from collections.abc import Callable

from steadypost.journal.engine import JOURNAL_ENV, Engine
from steadypost.journal.sqlite import SQLiteEngine


def is_url(target: str) -> bool:
    """Whether a journal target is a database URL rather than a file path."""
    return "://" in target


def open_engine(
    target: str | os.PathLike[str] | None, *, clock: Callable[[], float], busy_timeout_s: float
) -> Engine:
    """The engine for ``target``: a path or ``sqlite:///path``, or a ``postgresql://`` URL.

    ``None`` means ``$STEADYPOST_JOURNAL`` if set, else the default journal
    file (:func:`steadypost.paths.default_journal_path`).
    """
    if target is None:
        target = os.environ.get(JOURNAL_ENV) or None
    text = os.fspath(target) if target is not None else None
    if text is not None and is_url(text):
        scheme = text.split("://", 1)[0].lower()
        if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
            from steadypost.journal.postgres import PostgresEngine  # a file journal needs none

            return PostgresEngine(text, clock=clock, busy_timeout_s=busy_timeout_s)
        if scheme == "sqlite":  # as SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db
            text = text.split("://", 1)[1].removeprefix("/")
            if not text:
                raise ValueError("a sqlite:/// journal URL needs a path: sqlite:////home/me/j.db")
        else:
            raise ValueError(
                f"unknown journal URL scheme {scheme!r}: give a file path, sqlite:///path, "
                "or postgresql://user@host/dbname"
            )
    return SQLiteEngine(text, clock=clock, busy_timeout_s=busy_timeout_s)
