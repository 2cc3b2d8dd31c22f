"""What ``steadypost status`` shows: is a daemon running, and what the journal holds.

:func:`read_status` only reads (the journal and the daemon's lock file), so
it is safe to call while a daemon works, from any process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from steadypost.daemon.lock import LockInfo, running_daemon
from steadypost.journal import Journal
from steadypost.models import Post, PostState


@dataclass(frozen=True)
class LastError:
    """The most recent error: of a post, or of the daemon itself."""

    at: float
    message: str
    post_id: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class Status:
    """A summary of the daemon and the journal at ``now``."""

    now: float
    journal: str
    daemon: LockInfo | None
    """The running daemon (pid, start time), or ``None`` if none runs."""
    counts: Mapping[PostState, int]
    uploading: tuple[Post, ...]
    next_upload: Post | None
    next_upload_at: float | None
    """When the next upload is due (at or before ``now``: due now)."""
    next_check: Post | None
    next_check_at: float | None
    last_error: LastError | None


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
    daemon = running_daemon(journal.path)
    return Status(
        now=now,
        journal=str(journal.path),
        daemon=daemon,
        counts=journal.counts(),
        uploading=tuple(p for p in active if p.state is PostState.UPLOADING),
        next_upload=next_upload,
        next_upload_at=_upload_due_at(next_upload) if next_upload else None,
        next_check=next_check,
        next_check_at=(next_check.next_attempt_ts or now) if next_check else None,
        last_error=_last_error(journal, daemon),
    )


def _last_error(journal: Journal, daemon: LockInfo | None) -> LastError | None:
    # Finished posts keep their error too (a failed post); confirmed ones have none.
    with_error = [p for p in journal.list() if p.last_error]
    latest = max(with_error, key=lambda p: p.updated_ts, default=None)
    found = (LastError(latest.updated_ts, latest.last_error or "", latest.post_id,
                       os.path.basename(latest.path)) if latest else None)  # fmt: skip
    if daemon is not None and daemon.last_error and daemon.last_error_at is not None and (
            found is None or daemon.last_error_at > found.at):  # fmt: skip
        return LastError(daemon.last_error_at, daemon.last_error)
    return found
