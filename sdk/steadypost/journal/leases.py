"""Leases, scheduling, retention and per-host state for :class:`steadypost.journal.Journal`.

Like ``_journal_posts`` this never touches sqlite3 directly; every statement
runs through the journal's error-translating helpers.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from typing import Any

from steadypost.errors import IllegalTransitionError, LeaseHeldError
from steadypost.journal import codec, owners
from steadypost.journal.posts import DEFAULT_LEASE_S, PostsAPI, check_lease_s
from steadypost.models import Post, PostState, can_transition

DEFAULT_RETENTION_S = 30 * 24 * 3600.0
"""How long finished posts are kept before ``Journal.purge`` may delete them (30 days)."""

_FINISHED = "(" + ", ".join(f"'{s.value}'" for s in PostState if s.finished) + ")"
# When a post next needs a worker: at once when queued, at lease expiry when
# uploading (a dead worker), else at next_attempt_at (NULL: at once).
_DUE_AT = """(CASE state WHEN 'queued' THEN updated_at
    WHEN 'uploading' THEN COALESCE(lease_expires_at, updated_at)
    ELSE COALESCE(next_attempt_at, updated_at) END)"""
_IS_DUE = f"(state = 'queued' OR {_DUE_AT} <= :now)"
_BY_DUE = f" ORDER BY {_DUE_AT}, created_at, post_id"
_CLAIMABLE = f" WHERE state IN ('queued', 'waiting', 'uploading') AND {_IS_DUE}"
_ACTIVE = "state IN ('queued', 'waiting', 'uploading', 'unconfirmed')"
_DUE = f" WHERE {_ACTIVE} AND {_IS_DUE}"
_NEXT_DUE = f"SELECT MIN({_DUE_AT}) FROM posts WHERE {_ACTIVE}"  # noqa: S608
_OWNER_GONE = "its owner's process is gone"
_LIVE_LEASES = " WHERE state = 'uploading' AND lease_expires_at > :now"


class ScheduleAPI(PostsAPI):
    """Who works on which post, when, and what the hosts are up to."""

    def claim(
        self,
        *,
        owner: str,
        lease_s: float = DEFAULT_LEASE_S,
        post_id: str | None = None,
        now: float | None = None,
    ) -> Post | None:
        """Atomically take one post to upload: it becomes ``uploading``, leased to ``owner``.

        Without ``post_id``, picks the most overdue claimable post: ``queued``,
        ``waiting`` whose ``next_attempt_at`` has come, or ``uploading`` whose
        lease expired or whose worker's process is gone; returns ``None`` if
        there is none. With ``post_id``, claims that post now whatever its
        ``next_attempt_at`` (the user asked for it); raises ``LeaseHeldError``
        while another owner's lease is live, ``IllegalTransitionError`` if it
        cannot upload (finished or ``unconfirmed``). Claiming a post you
        already hold renews the lease. ``attempts`` is left to the uploader.
        Keep the lease alive with :meth:`checkpoint` or :meth:`renew` more
        often than ``lease_s``.

        A lease ends early only when its owner's process is known to be gone
        (an owner from :func:`make_owner` whose process ended: ``kill -9``, a
        crash, a reboot; see :mod:`steadypost.journal.owners`); a process
        that is alive, even stopped or hung, keeps its lease until it expires.
        """
        lease_s = check_lease_s(lease_s)
        with self.atomic():
            now = self._clock() if now is None else now
            self._take_part(owner)
            self.end_orphaned_leases(now)
            if post_id is None:
                rows = self._rows(codec.SELECT_POSTS + _CLAIMABLE + _BY_DUE + " LIMIT 1",
                                  {"now": now})
                if not rows:
                    return None
                post = codec.post_from_row(rows[0])
            else:
                post = self._load(post_id)
                holder = self._live_holder(post, now)
                if holder not in (None, owner):
                    raise LeaseHeldError(
                        f"post {post_id} is being uploaded by {owners.describe_owner(holder)} "
                        f"(lease {holder}, until {post.lease_expires_at})"
                    )
                if not can_transition(post.state, PostState.UPLOADING):
                    raise IllegalTransitionError(f"post {post_id} is {post.state.value}; "
                                                 "it cannot be uploaded")
            previous = post.lease_owner if post.state is PostState.UPLOADING else None
            self._write(post, {"state": PostState.UPLOADING.value, "lease_owner": owner,
                               "lease_expires_at": now + lease_s, "updated_at": now})
            if previous != owner:
                data: dict[str, Any] = {"from": post.state.value, "to": "uploading", "owner": owner}
                if post.state is PostState.UPLOADING:
                    data.update(previous_owner=previous, reason=self._why_free(post))
                self._event(post.post_id, now, "state", data)
            return self._load(post.post_id)

    # --- who holds a lease: the one place that decides (fencing epochs will go here) -----

    @staticmethod
    def _live_holder(post: Post, now: float) -> str | None:
        """The owner whose lease on ``post`` is live at ``now`` (``None``: it may be taken)."""
        if post.state is not PostState.UPLOADING or (post.lease_expires_ts or 0.0) <= now:
            return None
        return post.lease_owner

    def _why_free(self, post: Post) -> str:
        """Why an uploading post's lease could be taken: it expired, or its owner is gone."""
        rows = self._rows("SELECT data FROM events WHERE post_id = ? ORDER BY event_id DESC"
                          " LIMIT 1", (post.post_id,))  # fmt: skip
        last = json.loads(rows[0][0]) if rows else {}
        gone = last.get("lease_ended") == _OWNER_GONE and last.get("owner") == post.lease_owner
        return _OWNER_GONE if gone else "lease expired"

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
        now = self._clock() if now is None else now
        rows = self._rows(codec.SELECT_POSTS + _LIVE_LEASES, {"now": now})
        orphans = [p for p in map(codec.post_from_row, rows)
                   if owners.gone(self._path, p.lease_owner)]  # fmt: skip
        if not orphans:
            return []
        ended = []
        with self.atomic():
            for post in orphans:
                current = self._load(post.post_id)
                if self._live_holder(current, now) != post.lease_owner:
                    continue  # renewed by a new owner, or released, meanwhile
                self._write(current, {"lease_expires_at": now})
                who = owners.describe_owner(post.lease_owner)
                message = f"the lease ends now: its owner ({who}) is gone"
                self._event(post.post_id, now, "note", {"message": message, "owner":
                            post.lease_owner, "lease_ended": _OWNER_GONE})  # fmt: skip
                ended.append(self._load(post.post_id))
        return ended

    def renew(self, post_id: str, *, owner: str, lease_s: float = DEFAULT_LEASE_S) -> Post:
        """Extend ``owner``'s lease on an uploading post (e.g. during a long backoff)."""
        return self.checkpoint(post_id, owner=owner, lease_s=lease_s)

    def release(
        self,
        post_id: str,
        *,
        owner: str,
        to: PostState = PostState.WAITING,
        next_attempt_at: float | None = None,
        last_error: str | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> Post:
        """Give up ``owner``'s lease, moving the post to ``to`` (default ``waiting``).

        Shorthand for ``transition(post_id, to, owner=owner, ...)``; a ``waiting``
        post with ``next_attempt_at=None`` is due again at once. ``last_error`` is
        only changed when given.
        """
        fields: dict[str, Any] = {"next_attempt_at": next_attempt_at}
        if last_error is not None:
            fields["last_error"] = last_error
        return self.transition(post_id, to, owner=owner, event=event, **fields)

    def due(self, *, now: float | None = None, limit: int | None = None) -> builtins.list[Post]:
        """Posts whose next action has come, most overdue first.

        Queued posts; waiting ones whose ``next_attempt_at`` has passed; uploading
        ones whose lease expired; and ``unconfirmed`` ones whose verification time
        (``next_attempt_at``) has come. A ``NULL`` ``next_attempt_at`` means now.
        Uploading posts whose owner's process is gone are due at once: their
        leases are ended first (the only write this may make).
        """
        sql = codec.SELECT_POSTS + _DUE + _BY_DUE
        params: dict[str, Any] = {"now": self._clock() if now is None else now}
        self.end_orphaned_leases(params["now"])
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = codec.non_negative("limit", limit)
        return [codec.post_from_row(row) for row in self._rows(sql, params)]

    def next_due_at(self) -> float | None:
        """When :meth:`due` next returns something (may be past); ``None``: nothing to do.

        A daemon sleeps until then, or until it is told about new work. Like
        :meth:`due`, it ends the leases of owners whose process is gone first.
        """
        self.end_orphaned_leases(self._clock())
        value = self._rows(_NEXT_DUE)[0][0]
        return None if value is None else float(value)

    def purge(self, *, older_than_s: float = DEFAULT_RETENTION_S) -> int:
        """Delete finished posts (and their events) untouched for ``older_than_s``.

        Only ``confirmed``, ``failed`` and ``cancelled`` posts are ever deleted
        (the schema refuses anything else too). Returns how many posts went.
        """
        if not older_than_s >= 0:
            raise ValueError(f"older_than_s must be >= 0, not {older_than_s!r}")
        with self.atomic():
            cutoff = self._clock() - older_than_s
            old = f"state IN {_FINISHED} AND updated_at < ?"
            self._run(
                f"DELETE FROM events WHERE post_id IN (SELECT post_id FROM posts WHERE {old})",  # noqa: S608
                (cutoff,),
            )
            return self._run(f"DELETE FROM posts WHERE {old}", (cutoff,))  # noqa: S608

    def counts(self) -> dict[PostState, int]:
        """How many posts are in each state (every state present, maybe 0)."""
        found = dict(self._rows("SELECT state, COUNT(*) FROM posts GROUP BY state"))
        return {state: int(found.get(state.value, 0)) for state in PostState}

    # --- per-host shared state (circuit breaker, retry budget, rate limits) -------------

    def get_host_state(self, host: str, kind: str) -> dict[str, Any] | None:
        """The JSON object last stored for ``(host, kind)``, or ``None``.

        Hosts are compared case-insensitively. The CLI and the daemon read the
        same rows, so a breaker opened by one is respected by the other.
        """
        rows = self._rows("SELECT data FROM hosts WHERE host = ? AND kind = ?",
                          (host.lower(), kind))
        if not rows:
            return None
        value = json.loads(rows[0][0])
        return value if isinstance(value, dict) else None

    def put_host_state(self, host: str, kind: str, data: Mapping[str, Any]) -> None:
        """Store (replace) the JSON object for ``(host, kind)``."""
        text = codec.dumps(data)
        with self.atomic():
            self._run(
                "INSERT OR REPLACE INTO hosts (host, kind, data, updated_at) VALUES (?, ?, ?, ?)",
                (host.lower(), kind, text, self._clock()),
            )

    def update_host_state(
        self,
        host: str,
        kind: str,
        update: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        """Read-modify-write ``(host, kind)`` in one transaction; returns the new state.

        ``update`` gets the current object (or ``None``) and returns the new one.
        Use it when several processes may change the same counters at once.
        """
        with self.atomic():
            new = dict(update(self.get_host_state(host, kind)))
            self.put_host_state(host, kind, new)
            return new
