"""Leases and scheduling: who works on which post, and when posts are due.

:class:`Leases` runs through the same :class:`~steadypost.journal.engine.Engine`
as :class:`~steadypost.journal.posts.PostTable` and uses it for the rows.

A claim is one transaction: it ends the leases of owners known to be gone
(see :mod:`steadypost.journal.owners`), picks the most overdue claimable post
(on PostgreSQL with ``FOR UPDATE SKIP LOCKED``: workers claiming at the same
moment take different posts and never wait for each other), bumps the post's
**fencing epoch** and writes the lease. Every later write of that worker
names its lease; one whose lease was taken over changes nothing.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from steadypost.errors import IllegalTransitionError, LeaseHeldError
from steadypost.journal import codec, owners
from steadypost.journal.posts import PostTable, check_lease_s, placeholders
from steadypost.models import Post, PostState, can_transition

DEFAULT_RETENTION_S = 30 * 24 * 3600.0
"""How long finished posts are kept before ``Journal.purge`` may delete them (30 days)."""

_FINISHED = "(" + ", ".join(f"'{s.value}'" for s in PostState if s.finished) + ")"
_ACTIVE = "state IN ('queued', 'waiting', 'uploading', 'unconfirmed')"
_OWNER_GONE = "its owner's process is gone"
_LEASED = "state IN ('uploading', 'unconfirmed')"
_LIVE_LEASES = f" WHERE {_LEASED} AND lease_expires_at > :now"
_LIVE_OWNERS = "SELECT post_id, lease_owner FROM posts" + _LIVE_LEASES  # noqa: S608
_RENEW = ("UPDATE posts SET lease_expires_at = :until WHERE post_id = :post_id"  # noqa: S608
          " AND lease_owner = :owner AND " + _LEASED)


def _due_at(greatest: str) -> str:
    """When a post next needs a worker (SQL): at once when queued, at lease expiry when
    uploading (a dead worker), else at next_attempt_at (NULL: at once), and for an
    unconfirmed post being checked, once the check's lease has ended too."""
    return f"""(CASE state WHEN 'queued' THEN updated_at
    WHEN 'uploading' THEN COALESCE(lease_expires_at, updated_at)
    WHEN 'unconfirmed' THEN {greatest}(COALESCE(next_attempt_at, updated_at),
                                       COALESCE(lease_expires_at, 0))
    ELSE COALESCE(next_attempt_at, updated_at) END)"""


class Leases:
    """Claims, renewals, what is due, retention (see the module docstring)."""

    def __init__(self, posts: PostTable) -> None:
        self.posts = posts
        self.engine = posts.engine
        due_at = _due_at(self.engine.dialect.greatest)
        self._is_due = f"(state = 'queued' OR {due_at} <= :now)"
        self._by_due = f" ORDER BY {due_at}, created_at, post_id"
        self._claimable = f" WHERE state IN ('queued', 'waiting', 'uploading') AND {self._is_due}"
        self._next_due = f"SELECT MIN({due_at}) FROM posts WHERE {_ACTIVE}"  # noqa: S608

    def _placed_here(self, params: dict[str, Any]) -> str:
        """The SQL condition "this worker can read the post's file" (always true on SQLite)."""
        if not self.engine.dialect.many_hosts:
            return ""
        place = self.posts.place
        params["here"] = place.host
        marks, names = placeholders("shared", place.mounted())
        params.update(names)
        shared = f" OR shared_prefix IN ({marks})" if names else ""
        return (" AND (upload_host = :here OR (upload_host IS NULL AND"
                f" (shared_prefix IS NULL{shared})))")  # fmt: skip

    def _placement_error(self, post: Post) -> LeaseHeldError | None:
        params: dict[str, Any] = {"post_id": post.post_id}
        where = self._placed_here(params)
        if not where or self.engine.rows(f"SELECT 1 FROM posts WHERE post_id = :post_id{where}",  # noqa: S608
                                         params):  # fmt: skip
            return None
        there = (f"host {post.upload_host}" if post.upload_host
                 else f"a worker that mounts {post.shared_prefix}")  # fmt: skip
        return LeaseHeldError(f"post {post.post_id}'s file is read on {there}, not here "
                              f"({self.posts.place.host}): a worker there uploads it")  # fmt: skip

    def claim(
        self, *, owner: str, lease_s: float, post_id: str | None, now: float | None,
        skip: Collection[str],
    ) -> Post | None:  # fmt: skip
        lease_s = check_lease_s(lease_s)
        with self.engine.atomic():
            now = self.posts.clock() if now is None else now
            self.posts.take_part(owner)
            self.end_orphaned_leases(now)
            if post_id is None:
                params: dict[str, Any] = {"now": now}
                found = self._first_due(self._claimable + self._placed_here(params), params, skip)
                if found is None:
                    return None
                post = found
            else:
                post = self.posts.load(post_id)
                holder = self.live_holder(post, now)
                if holder not in (None, owner):
                    raise LeaseHeldError(
                        f"post {post_id} is being uploaded by {owners.describe_owner(holder)} "
                        f"(lease {holder}, until {post.lease_expires_at})"
                    )
                if not can_transition(post.state, PostState.UPLOADING):
                    raise IllegalTransitionError(f"post {post_id} is {post.state.value}; "
                                                 "it cannot be uploaded")
                problem = self._placement_error(post)
                if problem is not None:
                    raise problem
            previous = post.lease_owner if post.state is PostState.UPLOADING else None
            self.posts.write(post, {"state": PostState.UPLOADING.value, "lease_owner": owner,
                                    "lease_expires_at": now + lease_s, "updated_at": now,
                                    "lease_epoch": post.lease_epoch + 1})  # fmt: skip
            if previous != owner:
                data: dict[str, Any] = {"from": post.state.value, "to": "uploading", "owner": owner}
                if post.state is PostState.UPLOADING:
                    data.update(previous_owner=previous, reason=self._why_free(post))
                self.posts.event(post.post_id, now, "state", data)
            return self.posts.load(post.post_id)

    def claim_check(
        self, *, owner: str, lease_s: float, now: float | None, skip: Collection[str]
    ) -> Post | None:
        lease_s = check_lease_s(lease_s)
        with self.engine.atomic():
            now = self.posts.clock() if now is None else now
            self.posts.take_part(owner)
            where = f" WHERE state = 'unconfirmed' AND {self._is_due}"
            post = self._first_due(where, {"now": now}, skip)
            if post is None:
                return None
            # The post is not changed otherwise (its updated_at neither): a check that
            # finds it changed since leaves it alone.
            self.posts.write(post, {"lease_owner": owner, "lease_expires_at": now + lease_s,
                                    "lease_epoch": post.lease_epoch + 1})  # fmt: skip
            return self.posts.load(post.post_id)

    def _first_due(
        self, where: str, params: dict[str, Any], skip: Collection[str]
    ) -> Post | None:
        """The most overdue post matching ``where`` and not in ``skip``, locked (SKIP LOCKED)."""
        if skip:
            marks, names = placeholders("skip", sorted(skip))
            where += f" AND post_id NOT IN ({marks})"
            params = {**params, **names}
        sql = codec.SELECT_POSTS + where + self._by_due + " LIMIT 1"
        rows = self.engine.rows(sql + self.engine.dialect.skip_locked, params)
        return codec.post_from_row(rows[0]) if rows else None

    # --- who holds a lease: the one place that decides -----------------------------------

    @staticmethod
    def live_holder(post: Post, now: float) -> str | None:
        """The owner whose lease on ``post`` is live at ``now`` (``None``: it may be taken)."""
        leased = post.state in (PostState.UPLOADING, PostState.UNCONFIRMED)
        if not leased or (post.lease_expires_ts or 0.0) <= now:
            return None
        return post.lease_owner

    def _why_free(self, post: Post) -> str:
        """Why an uploading post's lease could be taken: it expired, or its owner is gone."""
        rows = self.engine.rows("SELECT data FROM events WHERE post_id = ? ORDER BY event_id"
                                " DESC LIMIT 1", (post.post_id,))  # fmt: skip
        last = json.loads(rows[0][0]) if rows else {}
        gone = last.get("lease_ended") == _OWNER_GONE and last.get("owner") == post.lease_owner
        return _OWNER_GONE if gone else "lease expired"

    def end_orphaned_leases(self, now: float | None = None) -> builtins.list[Post]:
        now = self.posts.clock() if now is None else now
        # (Only the owners are read to tell: this runs before every claim and look at what
        # is due, and the owners are nearly always alive.)
        rows = self.engine.rows(_LIVE_OWNERS, {"now": now})
        local = self.engine.dialect.many_hosts
        orphans = sorted((post_id, owner) for post_id, owner in rows
                         if owners.gone(self.engine.path, owner, host_only=local))  # fmt: skip
        if not orphans:
            return []
        ended = []
        with self.engine.atomic():
            for post_id, owner in orphans:  # one order: no deadlocks
                current = self.posts.load(post_id)
                if self.live_holder(current, now) != owner:
                    continue  # renewed by a new owner, or released, meanwhile
                self.posts.write(current, {"lease_expires_at": now})
                who = owners.describe_owner(owner)
                message = f"the lease ends now: its owner ({who}) is gone"
                self.posts.event(post_id, now, "note", {"message": message, "owner": owner,
                                                        "lease_ended": _OWNER_GONE})  # fmt: skip
                ended.append(self.posts.load(post_id))
        return ended

    def renew_all(self, leases: Iterable[tuple[str, str]], *, lease_s: float) -> set[str]:
        """Extend every ``(post_id, owner)`` lease that is still its owner's; those post ids."""
        lease_s = check_lease_s(lease_s)
        held = set()
        with self.engine.atomic():
            until = self.posts.clock() + lease_s
            for post_id, owner in leases:
                if self.engine.run(_RENEW, {"until": until, "post_id": post_id, "owner": owner}):
                    held.add(post_id)
        return held

    def due(
        self, *, now: float | None, limit: int | None,
        state: PostState | Iterable[PostState] | None,
    ) -> builtins.list[Post]:  # fmt: skip
        params: dict[str, Any] = {"now": self.posts.clock() if now is None else now}
        self.end_orphaned_leases(params["now"])
        sql = codec.SELECT_POSTS + f" WHERE {_ACTIVE} AND {self._is_due}"
        if state is not None:
            wanted = [state] if isinstance(state, str) else builtins.list(state)
            marks, names = placeholders("state", [PostState(s).value for s in wanted])
            sql += f" AND state IN ({marks})"
            params.update(names)
        sql += self._by_due
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = codec.non_negative("limit", limit)
        return [codec.post_from_row(row) for row in self.engine.rows(sql, params)]

    def next_due_at(self) -> float | None:
        self.end_orphaned_leases(self.posts.clock())
        value = self.engine.rows(self._next_due)[0][0]
        return None if value is None else float(value)

    def purge(self, *, older_than_s: float) -> int:
        if not older_than_s >= 0:
            raise ValueError(f"older_than_s must be >= 0, not {older_than_s!r}")
        with self.engine.atomic():
            cutoff = self.posts.clock() - older_than_s
            old = f"state IN {_FINISHED} AND updated_at < ?"
            self.engine.run(
                f"DELETE FROM events WHERE post_id IN (SELECT post_id FROM posts WHERE {old})",  # noqa: S608
                (cutoff,),
            )
            return self.engine.run(f"DELETE FROM posts WHERE {old}", (cutoff,))  # noqa: S608

    def counts(self) -> dict[PostState, int]:
        found = dict(self.engine.rows("SELECT state, COUNT(*) FROM posts GROUP BY state"))
        return {state: int(found.get(state.value, 0)) for state in PostState}


def release_fields(
    next_attempt_at: float | None, last_error: str | None
) -> Mapping[str, Any]:
    """The fields ``Journal.release`` changes along with the state."""
    fields: dict[str, Any] = {"next_attempt_at": next_attempt_at}
    if last_error is not None:
        fields["last_error"] = last_error
    return fields
