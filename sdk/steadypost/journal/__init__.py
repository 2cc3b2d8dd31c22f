"""The journal: every post and what happened to it, written before each network call.

Durability, and what survives ``kill -9``
-----------------------------------------
* Every method that writes runs ONE transaction and returns only after it
  committed. An SQLite file is in WAL mode with ``synchronous=FULL``, so a
  commit is fsynced: it survives the process being killed (``kill -9``), an OS
  crash and a power cut (on a disk that honours fsync); a PostgreSQL commit is
  as durable as the server is configured to be. A transaction cut short leaves
  nothing behind: a post is always in its last committed state.
* Intent is committed before I/O. The uploader claims a post (``uploading``,
  with a lease) before its first request, checkpoints the upload URL before
  sending bytes to it, and records an ``unconfirmed`` state before it can
  learn whether a publish went through. A crash between two steps therefore
  repeats at most one step, and the platform flows make every step safe to
  repeat.
* A dead worker's post is not stuck. When the worker's process is gone
  (``kill -9``, a crash, a reboot), :meth:`Journal.claim` and
  :meth:`Journal.due` see it at once (a lock file per process, which the
  kernel lets go of when the process ends: see
  :mod:`steadypost.journal.owners`) and hand the post to another worker,
  which resumes from the last checkpointed upload URL and offset. A worker
  on another machine, or whose process lives on (stopped, hung), keeps its
  lease until it expires after ``lease_s`` seconds.
* Fencing: every claim bumps the post's ``lease_epoch``. A worker's later
  writes name its lease (``owner``, and ``epoch``); once another worker has
  claimed the post, they raise :class:`~steadypost.errors.LeaseHeldError` and
  change nothing, so a worker frozen past its lease writes nothing more.
* One post per file, site and account: :meth:`Journal.add` joins the post
  the same file already has (see :meth:`Journal.add_or_join`), in the same
  transaction as the check, behind a unique index.
* Writers in several processes queue on the database's locks for up to
  ``busy_timeout_s`` instead of failing or interleaving.
* An SQLite file is private (created 0600, its directory 0700) and never
  overwritten: a corrupt file, or one that is not a steadypost journal, is
  refused with :class:`JournalCorruptError` and left exactly as it was (a
  PostgreSQL database holding another application's tables is refused too).

Backends
--------
``Journal(target)``: a path (or ``sqlite:///relative``, ``sqlite:////absolute``)
is an SQLite file (:mod:`steadypost.journal.sqlite`); ``postgresql://...`` is
a PostgreSQL database shared by a fleet of daemons
(:mod:`steadypost.journal.postgres`, needs ``steadypost[postgres]``).
``None`` is ``$STEADYPOST_JOURNAL``, else the default file. The API and its
behaviour are the same on both.

Errors
------
Every failure is a :class:`~steadypost.errors.JournalError`, with the database
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

The modules
-----------
:class:`Journal` (:mod:`.database`) is the public face, composed of an engine
(:mod:`.engine`: :mod:`.sqlite` or :mod:`.postgres`, their few differences in
:mod:`.dialect`) and the parts whose SQL is written once for both:
:mod:`.posts`, :mod:`.leases`, :mod:`.hoststate`, :mod:`.workers`.
:mod:`.owners` tells whether a lease's process is gone; :mod:`.codec` turns
rows into values; :mod:`.redact` keeps secrets out; :mod:`.migrations`
numbers the schema's steps. This is the only package that uses sqlite3 and
psycopg (imported only for a ``postgresql://`` journal).
"""

from steadypost.errors import (
    JournalCorruptError,
    PostExistsError,
    PostNotFoundError,
    SchemaTooNewError,
)
from steadypost.journal.codec import new_post_id
from steadypost.journal.database import DEFAULT_BUSY_TIMEOUT_S, SHARED_PATHS_ENV, Journal
from steadypost.journal.engine import JOURNAL_ENV
from steadypost.journal.leases import DEFAULT_RETENTION_S
from steadypost.journal.owners import describe_owner, make_owner, owner_pid
from steadypost.journal.posts import DEFAULT_LEASE_S, EVENT_KINDS, AddResult
from steadypost.journal.redact import redact_url
from steadypost.journal.workers import Worker

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "EVENT_KINDS",
    "JOURNAL_ENV",
    "SHARED_PATHS_ENV",
    "AddResult",
    "Journal",
    "JournalCorruptError",
    "PostExistsError",
    "PostNotFoundError",
    "SchemaTooNewError",
    "Worker",
    "describe_owner",
    "make_owner",
    "new_post_id",
    "owner_pid",
    "redact_url",
]
