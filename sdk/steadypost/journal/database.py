""":class:`Journal`: the public face of the journal, composed of an engine and its tables.

A :class:`Journal` holds one :class:`~steadypost.journal.engine.Engine` (the
database: SQLite or PostgreSQL) and the parts that run their SQL through it:
:class:`~steadypost.journal.posts.PostTable` (posts, events),
:class:`~steadypost.journal.leases.Leases` (claims, what is due, retention),
:class:`~steadypost.journal.hoststate.HostTable` (per-host state) and
:class:`~steadypost.journal.workers.WorkerTable` (the daemons). What the
journal guarantees is in the package docstring (:mod:`steadypost.journal`).
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from steadypost.journal import owners
from steadypost.journal.backends import open_engine
from steadypost.journal.engine import Engine
from steadypost.journal.hoststate import HostTable
from steadypost.journal.leases import DEFAULT_RETENTION_S, Leases, release_fields
from steadypost.journal.posts import DEFAULT_LEASE_S, AddResult, Place, PostTable
from steadypost.journal.workers import Worker, WorkerTable
from steadypost.models import FileIdentity, JournalEvent, Post, PostState

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "SHARED_PATHS_ENV", "Journal"]

DEFAULT_BUSY_TIMEOUT_S = 10.0
"""How long a write waits for another process's write to finish."""
SHARED_PATHS_ENV = "STEADYPOST_SHARED_PATHS"
"""Folders every worker of a fleet mounts at the same path (``os.pathsep``-separated)."""
_EMPTY: Mapping[str, str] = {}


def _shared_from_env() -> tuple[str, ...]:
    return tuple(p for p in os.environ.get(SHARED_PATHS_ENV, "").split(os.pathsep) if p)


class Journal:
    """The journal of posts and events; see the module docstring.

    ``target`` is a path or URL (see "Backends"); missing directories of a
    file are created (0700) and a new file is created 0600. ``clock`` returns
    UTC epoch seconds and stamps every row and event. ``host`` and
    ``shared_paths`` matter for a journal shared by several machines: a post
    records the host that added it (which alone may upload it) unless its file
    is under one of ``shared_paths`` (default ``$STEADYPOST_SHARED_PATHS``),
    folders every worker mounts at the same path. Use it as a context
    manager, or call :meth:`close`.

    Posts: :meth:`add`, :meth:`add_or_join`, :meth:`get`, :meth:`list`,
    :meth:`events`, :meth:`record`, :meth:`transition`, :meth:`checkpoint`.
    Workers: :meth:`claim`, :meth:`renew`, :meth:`renew_all`, :meth:`release`,
    :meth:`due`, :meth:`next_due_at`, :meth:`end_orphaned_leases`,
    :meth:`register_worker`, :meth:`worker_heartbeat`, :meth:`worker_stopped`,
    :meth:`workers`. Housekeeping: :meth:`counts`, :meth:`purge`,
    :meth:`check`, :meth:`atomic`. Hosts: :meth:`get_host_state`,
    :meth:`put_host_state`, :meth:`update_host_state`.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        host: str | None = None,
        shared_paths: Iterable[str | os.PathLike[str]] | None = None,
    ) -> None:
        if not (isinstance(busy_timeout_s, (int, float)) and math.isfinite(busy_timeout_s)
                and busy_timeout_s >= 0):
            raise ValueError(f"busy_timeout_s must be >= 0 seconds, not {busy_timeout_s!r}")
        self._clock = clock
        self._engine: Engine = open_engine(target, clock=clock, busy_timeout_s=busy_timeout_s)
        place = Place.here(host, _shared_from_env() if shared_paths is None else shared_paths)
        self._posts = PostTable(self._engine, clock, place)
        self._leases = Leases(self._posts)
        self._hosts = HostTable(self._posts)
        self._workers = WorkerTable(self._posts)
        self._engine.open()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The journal file; for PostgreSQL, the local path that stands for the database."""
        return self._engine.path

    @property
    def location(self) -> str:
        """What to show people: the file, or the database URL without its password."""
        return self._engine.location

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def shared(self) -> bool:
        """Whether workers on several machines may share this journal (PostgreSQL)."""
        return self._engine.dialect.many_hosts

    @property
    def host(self) -> str:
        """This machine's name, as posts and workers record it."""
        return self._posts.place.host

    @property
    def schema_version(self) -> int:
        """The journal's schema version (the last migration applied)."""
        return self._engine.schema_version

    def _rows(self, sql: str, params: Any = ()) -> builtins.list[Any]:
        """Run one read (for tests and support; the SQL is the engine's own dialect)."""
        return self._engine.rows(sql, params)

    def close(self) -> None:
        """Close the connection; idempotent. Everything committed stays."""
        self._engine.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.location!r})"

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """One transaction: commit on success, roll back on error.

        Every public method already runs in its own transaction; use this to group
        several so other processes see all or nothing. Nested use joins the outer
        transaction (through a savepoint, so an inner error caught inside the outer
        block undoes only the inner part). Posts read inside it are locked until it
        ends. Other threads wait while it is held: keep it short and never span an
        ``await``.
        """
        return self._engine.atomic()

    def check(self) -> None:
        """Check the database's integrity; ``JournalCorruptError`` on a problem."""
        self._engine.check()

    # --- posts ----------------------------------------------------------------------------

    def add(
        self, *, path: str | os.PathLike[str], endpoint: str, identity: FileIdentity,
        platform: str = "tus", metadata: Mapping[str, str] = _EMPTY,
        post_id: str | None = None, extra: Mapping[str, Any] | None = None, new: bool = False,
    ) -> Post:  # fmt: skip
        """Journal a post (state ``queued``), or join the post this file already has.

        Same as :meth:`add_or_join` but returns only the post; use that to
        learn whether a post was made or joined.
        """
        return self.add_or_join(
            path=path, endpoint=endpoint, identity=identity, platform=platform,
            metadata=metadata, post_id=post_id, extra=extra, new=new,
        ).post  # fmt: skip

    def add_or_join(
        self, *, path: str | os.PathLike[str], endpoint: str, identity: FileIdentity,
        platform: str = "tus", metadata: Mapping[str, str] = _EMPTY,
        post_id: str | None = None, extra: Mapping[str, Any] | None = None, new: bool = False,
    ) -> AddResult:  # fmt: skip
        """Journal a new post (``queued``) before anything is sent, unless the file has one.

        One post per (file, site, account): if this file (its real path and
        identity) already has a post for the same site (the endpoint's origin
        and the platform) and account (the adapter's ``account`` label in
        ``extra["platform"]``; tokens are never part of it) that is queued,
        uploading, waiting, unconfirmed or confirmed, that post is returned
        with ``joined=True`` and nothing is written. A failed or cancelled
        post does not count. ``new=True`` makes a further post of the same
        file on purpose. The check and the insert are one transaction, and a
        unique index backs them, so two processes adding the same file at
        the same instant get the same post.

        ``path`` is stored absolute. ``identity`` is what the file looked like
        when the user picked it; a changed file is never resumed. ``post_id``
        defaults to :func:`new_post_id`; a second ``add`` with an id that is
        in the journal already raises ``PostExistsError``. ``extra`` holds
        platform-specific JSON. On a shared journal the post records where
        its file can be read (see the class docstring).
        """
        return self._posts.add_or_join(
            path=path, endpoint=endpoint, identity=identity, platform=platform,
            metadata=metadata, post_id=post_id, extra=extra, new=new,
        )  # fmt: skip

    def get(self, post_id: str) -> Post:
        """The post's current row; ``PostNotFoundError`` if there is none."""
        return self._posts.load(post_id)

    def list(
        self, *, state: PostState | Iterable[PostState] | None = None, limit: int | None = None
    ) -> builtins.list[Post]:
        """Posts, oldest first, optionally only in the given state(s), at most ``limit``."""
        return self._posts.list(state=state, limit=limit)

    def events(self, post_id: str) -> builtins.list[JournalEvent]:
        """The post's evidence log, oldest first; ``PostNotFoundError`` if no such post."""
        return self._posts.events(post_id)

    def record(
        self, post_id: str, kind: str, data: Mapping[str, Any], *, owner: str | None = None,
        epoch: int | None = None,
    ) -> None:  # fmt: skip
        """Append an event (``request``, ``response``, ``error``, ``wait``, ``note``, ``verify``).

        Secrets are stripped first: keys such as ``Authorization`` or ``*token``
        are dropped and credential query parameters in URLs are redacted. With
        ``owner`` (and ``epoch``), written only while that lease holds
        (``LeaseHeldError`` otherwise).
        """
        self._posts.record(post_id, kind, data, owner=owner, epoch=epoch)

    def transition(
        self, post_id: str, to: PostState, *, owner: str | None = None,
        epoch: int | None = None, event: Mapping[str, Any] | None = None, **fields: Any,
    ) -> Post:  # fmt: skip
        """Move a post to state ``to`` and update ``fields``, with a ``state`` event.

        Raises ``IllegalTransitionError`` unless the lifecycle allows the move.
        With ``owner``, the caller asserts it holds the lease (``LeaseHeldError``
        otherwise; with ``epoch`` too, the lease of that very claim); without it
        the move is administrative, e.g. a user cancelling a post that a daemon
        is uploading (the daemon learns at its next checkpoint). Entering
        ``uploading`` from another state takes the lease and so needs ``owner``
        (:meth:`claim` is the usual way); leaving ``uploading`` releases it.
        ``fields``: upload_url, offset, attempts, next_attempt_at, last_error
        (stored redacted), sha256, upload_expires_at, extra (replaced whole),
        size, mtime_ns. ``event`` adds data to the event.
        """
        return self._posts.transition(post_id, to, owner=owner, epoch=epoch, event=event,
                                      lease_s=DEFAULT_LEASE_S, fields=fields)  # fmt: skip

    def checkpoint(
        self, post_id: str, *, owner: str, epoch: int | None = None,
        lease_s: float = DEFAULT_LEASE_S, **fields: Any,
    ) -> Post:  # fmt: skip
        """Save an uploading post's progress and renew ``owner``'s lease for ``lease_s``.

        ``fields``: upload_url, offset, sha256, upload_expires_at, extra, attempts.
        Journal a new upload URL *before* sending bytes to it. The offset never
        goes back within one upload (``JournalError``); a new ``upload_url``
        starts a new upload, at offset 0 unless given. Raises
        ``IllegalTransitionError`` if the post is no longer uploading (e.g.
        cancelled) and ``LeaseHeldError`` if another worker took it over (or,
        with ``epoch``, claimed it again since): in both cases stop working on it.
        """
        return self._posts.checkpoint(post_id, owner=owner, epoch=epoch, lease_s=lease_s,
                                      fields=fields)  # fmt: skip

    # --- workers and leases ---------------------------------------------------------------

    def claim(
        self, *, owner: str, lease_s: float = DEFAULT_LEASE_S, post_id: str | None = None,
        now: float | None = None, skip: Collection[str] = (),
    ) -> Post | None:  # fmt: skip
        """Atomically take one post to upload: it becomes ``uploading``, leased to ``owner``.

        Without ``post_id``, picks the most overdue claimable post (not one in
        ``skip``): ``queued``, ``waiting`` whose ``next_attempt_at`` has come, or
        ``uploading`` whose lease expired or whose worker's process is gone;
        returns ``None`` if there is none. On PostgreSQL this is ``SELECT ...
        FOR UPDATE SKIP LOCKED``: workers claiming at once get different posts,
        and a worker only gets posts whose file it can read (those of its host,
        or under a shared folder it mounts). With ``post_id``, claims that post
        now whatever its ``next_attempt_at`` (the user asked for it); raises
        ``LeaseHeldError`` while another owner's lease is live (or when its
        file is on another host), ``IllegalTransitionError`` if it cannot
        upload (finished or ``unconfirmed``). Claiming a post you already hold
        renews the lease. Every claim bumps the post's ``lease_epoch``: pass the
        claimed post's epoch to later writes to fence them. ``attempts`` is left
        to the uploader. Keep the lease alive with :meth:`checkpoint` or
        :meth:`renew` more often than ``lease_s``.

        A lease ends early only when its owner's process is known to be gone
        (an owner from :func:`make_owner` on this host whose process ended:
        ``kill -9``, a crash, a reboot; see :mod:`steadypost.journal.owners`); a
        process that is alive, even stopped or hung, keeps its lease until it
        expires.
        """
        return self._leases.claim(owner=owner, lease_s=lease_s, post_id=post_id, now=now,
                                  skip=skip)  # fmt: skip

    def claim_check(
        self, *, owner: str, lease_s: float = DEFAULT_LEASE_S, now: float | None = None,
        skip: Collection[str] = (),
    ) -> Post | None:  # fmt: skip
        """Reserve the most overdue ``unconfirmed`` post whose check is due, for ``owner``.

        So that workers checking at the same moment check different posts
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). The post stays
        ``unconfirmed`` and is not due for others until the reservation's lease
        ends (``lease_s``) or its check moves it (which ends the reservation);
        nothing else of it changes. Returns ``None`` when no check is due.
        """
        return self._leases.claim_check(owner=owner, lease_s=lease_s, now=now, skip=skip)

    def end_orphaned_leases(self, now: float | None = None) -> builtins.list[Post]:
        """End now the live leases whose owner's process is gone; returns those posts.

        They stay ``uploading``, with ``lease_expires_at`` now: due at once,
        and the next :meth:`claim` takes them over from their last checkpoint.
        :meth:`claim`, :meth:`due` and :meth:`next_due_at` call this first;
        call it yourself before showing posts, so a dead uploader's post does
        not look busy. The test (a lock file nobody holds, see
        :mod:`steadypost.journal.owners`) takes no write lock; only when it
        finds something does this write, in one transaction, with a ``note``
        event per post.
        """
        return self._leases.end_orphaned_leases(now)

    def renew(
        self, post_id: str, *, owner: str, epoch: int | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Post:  # fmt: skip
        """Extend ``owner``'s lease on an uploading post (e.g. during a long backoff)."""
        return self.checkpoint(post_id, owner=owner, epoch=epoch, lease_s=lease_s)

    def renew_all(self, leases: Iterable[tuple[str, str]], *, lease_s: float) -> set[str]:
        """A worker's heartbeat: extend each ``(post_id, owner)`` lease for ``lease_s``.

        One transaction. A lease its owner no longer holds is left alone;
        returns the ids of the posts whose lease was extended.
        """
        return self._leases.renew_all(leases, lease_s=lease_s)

    def release(
        self, post_id: str, *, owner: str, epoch: int | None = None,
        to: PostState = PostState.WAITING, next_attempt_at: float | None = None,
        last_error: str | None = None, event: Mapping[str, Any] | None = None,
    ) -> Post:  # fmt: skip
        """Give up ``owner``'s lease, moving the post to ``to`` (default ``waiting``).

        Shorthand for ``transition(post_id, to, owner=owner, ...)``; a ``waiting``
        post with ``next_attempt_at=None`` is due again at once. ``last_error`` is
        only changed when given.
        """
        fields = release_fields(next_attempt_at, last_error)
        return self.transition(post_id, to, owner=owner, epoch=epoch, event=event, **fields)

    def due(
        self, *, now: float | None = None, limit: int | None = None,
        state: PostState | Iterable[PostState] | None = None,
    ) -> builtins.list[Post]:  # fmt: skip
        """Posts whose next action has come, most overdue first (only in ``state``, if given).

        Queued posts; waiting ones whose ``next_attempt_at`` has passed; uploading
        ones whose lease expired; and ``unconfirmed`` ones whose verification time
        (``next_attempt_at``) has come. A ``NULL`` ``next_attempt_at`` means now.
        Uploading posts whose owner's process is gone are due at once: their
        leases are ended first (the only write this may make).
        """
        return self._leases.due(now=now, limit=limit, state=state)

    def next_due_at(self) -> float | None:
        """When :meth:`due` next returns something (may be past); ``None``: nothing to do.

        A daemon sleeps until then, or until it is told about new work. Like
        :meth:`due`, it ends the leases of owners whose process is gone first.
        """
        return self._leases.next_due_at()

    def owner_gone(self, owner: str | None) -> bool:
        """Whether the process behind a lease owner name is known to be gone (see ``owners``)."""
        return owners.gone(self.path, owner, host_only=self.shared)

    def register_worker(
        self, name: str, *, process: str, lease_s: float, data: Mapping[str, Any] = _EMPTY
    ) -> None:
        """A daemon starts: record it (replacing an earlier worker of that name)."""
        self._workers.register(name, process=process, lease_s=lease_s, data=data)

    def worker_heartbeat(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        """The daemon ``name`` is alive (and, with ``data``, what it says about itself)."""
        self._workers.beat(name, data)

    def worker_stopped(self, name: str) -> None:
        """The daemon ``name`` exited cleanly."""
        self._workers.stopped(name)

    def workers(self, *, forget_after_s: float | None = None) -> builtins.list[Worker]:
        """The daemons of this journal, by host (forgetting those silent for ``forget_after_s``)."""
        return self._workers.list(forget_after_s=forget_after_s)

    # --- housekeeping -----------------------------------------------------------------------

    def purge(self, *, older_than_s: float = DEFAULT_RETENTION_S) -> int:
        """Delete finished posts (and their events) untouched for ``older_than_s``.

        Only ``confirmed``, ``failed`` and ``cancelled`` posts are ever deleted
        (the schema refuses anything else too). Returns how many posts went.
        """
        return self._leases.purge(older_than_s=older_than_s)

    def counts(self) -> dict[PostState, int]:
        """How many posts are in each state (every state present, maybe 0)."""
        return self._leases.counts()

    # --- per-host shared state (circuit breaker, retry budget, rate limits) -------------

    def get_host_state(self, host: str, kind: str) -> dict[str, Any] | None:
        """The JSON object last stored for ``(host, kind)``, or ``None``.

        Hosts are compared case-insensitively. Every process on the journal
        reads the same rows, so a breaker opened by one is respected by all.
        """
        return self._hosts.get(host, kind)

    def put_host_state(self, host: str, kind: str, data: Mapping[str, Any]) -> None:
        """Store (replace) the JSON object for ``(host, kind)``."""
        self._hosts.put(host, kind, data)

    def update_host_state(
        self, host: str, kind: str, update: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:  # fmt: skip
        """Read-modify-write ``(host, kind)`` in one transaction; returns the new state.

        ``update`` gets the current object (or ``None``) and returns the new one.
        The row is locked meanwhile, so when several processes change the same
        counters at once, each sees the others' changes.
        """
        return self._hosts.update(host, kind, update)
