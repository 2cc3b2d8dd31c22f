"""What ``steadypost status`` shows: which daemons work, and what the journal holds.

:func:`read_status` only reads (the journal, and an SQLite journal's daemon
lock file), so it is safe to call while daemons work, from any process. The
workers are every daemon that registered on the journal (one on SQLite, any
number on PostgreSQL), each with its host, its last heartbeat and the posts it
is uploading; a worker not heard from within its lease is shown as silent
(killed, frozen, or cut off: its posts are taken over when their leases end).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from steadypost.daemon.lock import LockInfo, running_daemon
from steadypost.journal import Journal, Worker
from steadypost.models import Post, PostState

#: Cleanly stopped workers are listed for this long after they stopped.
SHOW_STOPPED_S = 3600.0


@dataclass(frozen=True)
class LastError:
    """The most recent error: of a post, or of the daemon itself."""

    at: float
    message: str
    post_id: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class WorkerStatus:
    """One worker of the journal, and the posts it is uploading."""

    worker: Worker
    alive: bool
    """Heard from within its lease (and not stopped)."""
    uploading: tuple[Post, ...] = ()


@dataclass(frozen=True)
class Status:
    """A summary of the daemons and the journal at ``now``."""

    now: float
    journal: str
    daemon: LockInfo | None
    """An SQLite journal's running daemon (pid, start time), or ``None`` if none runs."""
    counts: Mapping[PostState, int]
    uploading: tuple[Post, ...]
    next_upload: Post | None
    next_upload_at: float | None
    """When the next upload is due (at or before ``now``: due now)."""
    next_check: Post | None
    next_check_at: float | None
    last_error: LastError | None
    workers: tuple[WorkerStatus, ...] = ()
    """The daemons of the journal, live ones and those silent or recently stopped."""
    shared: bool = False
    """A journal several machines share (PostgreSQL): its daemons are the workers."""


def _upload_due_at(post: Post) -> float:
    if post.state is PostState.QUEUED:
        return post.updated_ts
    due = post.next_attempt_ts
    return due if due is not None else post.updated_ts


def read_status(journal: Journal, *, now: float) -> Status:
    """Read the lock file and the journal; see :class:`Status`."""
    active = journal.list(state=[PostState.QUEUED, PostState.WAITING, PostState.UPLOADING,
                                 PostState.UNCONFIRMED])  # fmt: skip
    pending = [p for p in active if p.state in (PostState.QUEUED, PostState.WAITING)]
    checks = [p for p in active if p.state is PostState.UNCONFIRMED]
    next_upload = min(pending, key=_upload_due_at, default=None)
    next_check = min(checks, key=lambda p: p.next_attempt_ts or now, default=None)
    daemon = None if journal.shared else running_daemon(journal.path)
    uploading = [p for p in active if p.state is PostState.UPLOADING]
    workers = tuple(
        WorkerStatus(w, w.alive(now), tuple(p for p in uploading if w.owns(p.lease_owner)))
        for w in journal.workers()
        if w.stopped_at is None or now - w.stopped_at < SHOW_STOPPED_S
    )
    return Status(
        now=now,
        journal=journal.location,
        daemon=daemon,
        counts=journal.counts(),
        uploading=tuple(p for p in active if p.state is PostState.UPLOADING),
        next_upload=next_upload,
        next_upload_at=_upload_due_at(next_upload) if next_upload else None,
        next_check=next_check,
        next_check_at=(next_check.next_attempt_ts or now) if next_check else None,
        last_error=_last_error(journal, daemon, workers),
        workers=workers,
        shared=journal.shared,
    )


def _last_error(
    journal: Journal, daemon: LockInfo | None, workers: tuple[WorkerStatus, ...]
) -> LastError | None:
    # Finished posts keep their error too (a failed post); confirmed ones have none.
    with_error = [p for p in journal.list() if p.last_error]
    latest = max(with_error, key=lambda p: p.updated_ts, default=None)
    found = (LastError(latest.updated_ts, latest.last_error or "", latest.post_id,
                       os.path.basename(latest.path)) if latest else None)  # fmt: skip
    if daemon is not None and daemon.last_error and daemon.last_error_at is not None and (
            found is None or daemon.last_error_at > found.at):  # fmt: skip
        return LastError(daemon.last_error_at, daemon.last_error)
    for view in workers:  # a daemon's own error (the database away, say), in its heartbeat
        said, at = view.worker.data.get("last_error"), view.worker.data.get("last_error_at")
        if isinstance(said, str) and isinstance(at, (int, float)) and (found is None
                                                                        or at > found.at):
            found = LastError(float(at), f"worker {view.worker.name}: {said}")
    return found
