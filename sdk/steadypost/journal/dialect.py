"""The few places where the journal's SQL differs between SQLite and PostgreSQL.

The post, lease and host-state SQL of :mod:`steadypost.journal` is written
once, in the common subset of both (``?`` and ``:name`` parameters, which
the PostgreSQL engine rewrites for psycopg). What differs is here, so a
reader sees every difference in one screen:

============================  =============================  ==================================
what                          SQLite                         PostgreSQL
============================  =============================  ==================================
lock the rows a write reads   nothing: ``BEGIN IMMEDIATE``   ``FOR UPDATE``
                              holds the whole file
claim without waiting         nothing (one writer at once)   ``FOR UPDATE SKIP LOCKED``
the larger of two values      ``MAX(a, b)``                  ``GREATEST(a, b)``
serialise two adds of a file  nothing (one writer at once)   ``pg_advisory_xact_lock(key)``
many hosts on one journal     no: one machine's disk         yes: posts record where their
                                                             file can be read
============================  =============================  ==================================

The schema's differences (column types, triggers) are in
:mod:`steadypost.journal.migrations`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """What one database engine says differently (see the module docstring)."""

    name: str
    for_update: str
    """Appended to a SELECT whose rows the transaction goes on to change."""
    skip_locked: str
    """Appended to the SELECT of a claim: rows another worker is claiming are passed over."""
    greatest: str
    """The function that returns the larger of its arguments."""
    key_lock: str | None
    """A statement taking a transaction-long lock on a text key (``?``), or ``None``."""
    many_hosts: bool
    """Workers on several machines may share the journal (posts then say where to upload)."""


SQLITE = Dialect(
    name="sqlite", for_update="", skip_locked="", greatest="MAX", key_lock=None,
    many_hosts=False,
)  # fmt: skip
POSTGRES = Dialect(
    name="postgresql", for_update=" FOR UPDATE", skip_locked=" FOR UPDATE SKIP LOCKED",
    greatest="GREATEST", key_lock="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
    many_hosts=True,
)  # fmt: skip
