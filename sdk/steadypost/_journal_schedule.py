"""Leases, scheduling, retention and per-host state for :class:`steadypost.journal.Journal`.

Like ``_journal_posts`` this never touches sqlite3 directly; every statement
runs through the journal's error-translating helpers.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from typing import Any

from steadypost import _journal_codec as codec
from steadypost._journal_posts import DEFAULT_LEASE_S, PostsAPI, check_lease_s
from steadypost.errors import IllegalTransitionError, LeaseHeldError
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
        lease expired (its worker died); returns ``None`` if there is none.
        With ``post_id``, claims that post now whatever its ``next_attempt_at``
        (the user asked for it); raises ``LeaseHeldError`` while another owner's
        lease is live, ``IllegalTransitionError`` if it cannot upload (finished
        or ``unconfirmed``). Claiming a post you already hold renews the lease.
        ``attempts`` is left to the uploader. Keep the lease alive with
        :meth:`checkpoint` or :meth:`renew` more often than ``lease_s``.
        """
        lease_s = check_lease_s(lease_s)
        with self.atomic():
            now = self._clock() if now is None else now
            if post_id is None:
                rows = self._rows(codec.SELECT_POSTS + _CLAIMABLE + _BY_DUE + " LIMIT 1",
                                  {"now": now})
                if not rows:
                    return None
                post = codec.post_from_row(rows[0])
            else:
                post = self._load(post_id)
                holder = post.lease_owner if post.state is PostState.UPLOADING else None
                live = (post.lease_expires_at or 0.0) > now
                if holder not in (None, owner) and live:
                    raise LeaseHeldError(
                        f"post {post_id} is being uploaded by {holder} (lease until "
                        f"{post.lease_expires_at})"
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
                    data.update(previous_owner=previous, reason="lease expired")
                self._event(post.post_id, now, "state", data)
            return self._load(post.post_id)

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
        """
        sql = codec.SELECT_POSTS + _DUE + _BY_DUE
        params: dict[str, Any] = {"now": self._clock() if now is None else now}
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = codec.non_negative("limit", limit)
        return [codec.post_from_row(row) for row in self._rows(sql, params)]

    def next_due_at(self) -> float | None:
        """When :meth:`due` next returns something (may be past); ``None``: nothing to do.

        A daemon sleeps until then, or until it is told about new work.
        """
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
