"""Posts and their events: the part of :class:`steadypost.journal.Journal` a flow uses most.

This module never touches sqlite3: it runs SQL through the journal's
``_rows``/``_run``/``atomic``, where errors are translated (see ``journal.py``).
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

from steadypost.errors import (
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    PostExistsError,
    PostNotFoundError,
)
from steadypost.journal import codec, owners
from steadypost.journal.redact import sanitize
from steadypost.models import FileIdentity, JournalEvent, Post, PostState, can_transition

DEFAULT_LEASE_S = 300.0
"""How long a claimed post stays reserved without a checkpoint or renew."""
EVENT_KINDS = frozenset({"request", "response", "error", "wait", "note", "verify"})
"""Kinds accepted by ``Journal.record`` (``state`` events come from transitions)."""

Params: TypeAlias = "Sequence[Any] | Mapping[str, Any]"
_EMPTY: Mapping[str, str] = MappingProxyType({})
_UPLOADING = PostState.UPLOADING
_LEASE_OWNERS = "SELECT lease_owner FROM posts WHERE state = 'uploading'"
_IDENTITY_FIELDS = frozenset({"size", "mtime_ns", "dev", "inode", "ctime_ns"})
#: Another post holding a key's place in the unique index of migration 4.
_HOLDER_OF_KEY = (
    "SELECT 1 FROM posts WHERE file_key = ? AND post_id != ? AND new_on_purpose = 0"
    " AND state IN ('queued', 'uploading', 'waiting', 'unconfirmed', 'confirmed')"
)
#: The post a new one of the same file would duplicate: the latest one in a state that
#: blocks a new post (all but failed and cancelled; as in migration 4's unique index).
_SAME_FILE = (
    "SELECT post_id FROM posts WHERE file_key = ?"
    " AND state IN ('queued', 'uploading', 'waiting', 'unconfirmed', 'confirmed')"
    " ORDER BY created_at DESC, post_id DESC LIMIT 1"
)


@dataclass(frozen=True)
class AddResult:
    """What :meth:`~steadypost.journal.Journal.add_or_join` did.

    ``post`` is the journaled post; ``joined`` is True when it was there
    already (the same file, site and account, not failed or cancelled) and
    nothing new was journaled. It is not part of :class:`Post`, a journal
    row, because it describes one call, not the post.
    """

    post: Post
    joined: bool


def check_lease_s(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise ValueError(f"lease_s must be a positive number of seconds, not {value!r}")
    return float(value)


class JournalBase:
    """What the API mixins need from the engine in ``journal.py``."""

    _path: Path
    _clock: Callable[[], float]

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _rows(self, sql: str, params: Params = ()) -> builtins.list[Any]:
        raise NotImplementedError

    def _run(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    def _load(self, post_id: str) -> Post:
        rows = self._rows(codec.SELECT_POSTS + " WHERE post_id = ?", (post_id,))
        if not rows:
            raise PostNotFoundError(f"no post {post_id!r} in journal {self._path}")
        return codec.post_from_row(rows[0])

    def _event(self, post_id: str, at: float, kind: str, data: Mapping[str, Any]) -> None:
        self._run(
            "INSERT INTO events (post_id, at, kind, data) VALUES (?, ?, ?, ?)",
            (post_id, at, kind, codec.dumps(sanitize(data))),
        )

    def _write(self, post: Post, values: dict[str, Any]) -> None:
        """UPDATE one post; a new upload URL starts at offset 0 unless one is given."""
        if values.get("upload_url", post.upload_url) != post.upload_url:
            values.setdefault("offset", 0)
            values.setdefault("sent_to", 0)
        size, offset = values.get("size", post.identity.size), values.get("offset", post.offset)
        if offset > size:
            raise ValueError(f"post {post.post_id}: offset {offset} is beyond size {size}")
        if _IDENTITY_FIELDS & values.keys():
            self._rekey(post, values)
        columns = ", ".join(f'"{name}" = ?' for name in values)  # names are whitelisted
        sql = f"UPDATE posts SET {columns} WHERE post_id = ?"  # noqa: S608
        self._run(sql, (*values.values(), post.post_id))

    def _rekey(self, post: Post, values: dict[str, Any]) -> None:
        """The file's identity changes (a post started over on a changed file): so does its key.

        Should another post already hold that key's place (the user posted the
        changed file meanwhile), this one goes on as a further post of it.
        """
        old = post.identity
        known = {k: values.get(k, getattr(old, k)) for k in ("size", "mtime_ns", "ctime_ns")}
        dev, inode = (codec.from_u64(values[k]) if k in values else getattr(old, k)
                      for k in ("dev", "inode"))  # fmt: skip
        identity = FileIdentity(dev=dev, inode=inode, **known)
        extra = codec.loads_frozen(values["extra"]) if "extra" in values else post.extra
        values["file_key"] = codec.file_key(
            path=post.path, identity=identity, endpoint=post.endpoint, platform=post.platform,
            account=codec.account_of(extra),
        )  # fmt: skip
        if self._rows(_HOLDER_OF_KEY, (values["file_key"], post.post_id)):
            values["new_on_purpose"] = 1

    def _take_part(self, owner: str) -> None:
        """Before a lease names ``owner``: this process holds its owner lock (and tidies up).

        See :mod:`steadypost.journal.owners`; run inside the transaction
        that writes the lease.
        """
        if owners.hold(self._path, owner):
            in_use = {row[0] for row in self._rows(_LEASE_OWNERS)}
            owners.sweep(self._path, in_use)

    @staticmethod
    def _require_lease(post: Post, owner: str) -> None:
        if post.lease_owner != owner:
            raise LeaseHeldError(
                f"post {post.post_id} ({post.state.value}) is not leased by {owner}; "
                f"lease holder: {post.lease_owner or 'nobody'}"
            )


class PostsAPI(JournalBase):
    """Adding, reading, moving and annotating posts."""

    def add(
        self,
        *,
        path: str | os.PathLike[str],
        endpoint: str,
        identity: FileIdentity,
        platform: str = "tus",
        metadata: Mapping[str, str] = _EMPTY,
        post_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        new: bool = False,
    ) -> Post:
        """Journal a post (state ``queued``), or join the post this file already has.

        Same as :meth:`add_or_join` but returns only the post; use that to
        learn whether a post was made or joined.
        """
        return self.add_or_join(
            path=path, endpoint=endpoint, identity=identity, platform=platform,
            metadata=metadata, post_id=post_id, extra=extra, new=new,
        ).post  # fmt: skip

    def add_or_join(
        self,
        *,
        path: str | os.PathLike[str],
        endpoint: str,
        identity: FileIdentity,
        platform: str = "tus",
        metadata: Mapping[str, str] = _EMPTY,
        post_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        new: bool = False,
    ) -> AddResult:
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
        platform-specific JSON.
        """
        pid = codec.check_post_id(post_id) if post_id is not None else None
        for name, text in (("platform", platform), ("endpoint", endpoint)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"{name} must be a non-empty str, not {text!r}")
        values: dict[str, Any] = {
            "platform": platform,
            "endpoint": endpoint,
            "path": os.path.abspath(os.fsdecode(path)),
            **codec.field_values(
                {"size": identity.size, "mtime_ns": identity.mtime_ns, "sha256": identity.sha256,
                 "dev": identity.dev, "inode": identity.inode, "ctime_ns": identity.ctime_ns,
                 "sent_to": 0},
                codec.TRANSITION_FIELDS,
                what="add",
            ),
            "metadata": codec.metadata_json(metadata),
            "extra": codec.dumps(extra or {}),
            "state": PostState.QUEUED.value,
        }
        values["file_key"] = codec.file_key(
            path=values["path"], identity=identity, endpoint=endpoint, platform=platform,
            account=codec.account_of(extra),
        )  # fmt: skip
        with self.atomic():
            now = self._clock()
            values["post_id"] = pid or codec.new_post_id(clock=self._clock)
            if self._rows("SELECT 1 FROM posts WHERE post_id = ?", (values["post_id"],)):
                raise PostExistsError(f"post {values['post_id']} is already in the journal")
            existing = self._rows(_SAME_FILE, (values["file_key"],))
            if existing and not new:
                return AddResult(self._load(existing[0][0]), joined=True)
            values["new_on_purpose"] = int(bool(existing))
            values["created_at"] = values["updated_at"] = now
            columns = ", ".join(f'"{name}"' for name in values)
            marks = ", ".join("?" for _ in values)
            self._run(f"INSERT INTO posts ({columns}) VALUES ({marks})", tuple(values.values()))  # noqa: S608
            data: dict[str, Any] = {"from": None, "to": "queued"}
            if existing:
                data["new_on_purpose"] = f"another post of this file: {existing[0][0]}"
            self._event(values["post_id"], now, "state", data)
            return AddResult(self._load(values["post_id"]), joined=False)

    def get(self, post_id: str) -> Post:
        """The post's current row; ``PostNotFoundError`` if there is none."""
        return self._load(post_id)

    def list(
        self,
        *,
        state: PostState | Iterable[PostState] | None = None,
        limit: int | None = None,
    ) -> builtins.list[Post]:
        """Posts, oldest first, optionally only in the given state(s), at most ``limit``."""
        sql, params = codec.SELECT_POSTS, builtins.list[Any]()
        if state is not None:
            wanted = [state] if isinstance(state, str) else builtins.list(state)
            params = [PostState(s).value for s in wanted]
            sql += f" WHERE state IN ({', '.join('?' for _ in params)})"
        sql += " ORDER BY created_at, post_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(codec.non_negative("limit", limit))
        return [codec.post_from_row(row) for row in self._rows(sql, params)]

    def events(self, post_id: str) -> builtins.list[JournalEvent]:
        """The post's evidence log, oldest first; ``PostNotFoundError`` if no such post."""
        rows = self._rows(codec.SELECT_EVENTS + " WHERE post_id = ? ORDER BY event_id", (post_id,))
        if not rows:
            self._load(post_id)  # every post has its creation event; maybe it is unknown
        return [codec.event_from_row(row) for row in rows]

    def record(self, post_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Append an event (``request``, ``response``, ``error``, ``wait``, ``note``, ``verify``).

        Secrets are stripped first: keys such as ``Authorization`` or ``*token``
        are dropped and credential query parameters in URLs are redacted.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind must be one of {sorted(EVENT_KINDS)}, not {kind!r}")
        with self.atomic():
            self._load(post_id)
            self._event(post_id, self._clock(), kind, data)

    def transition(
        self,
        post_id: str,
        to: PostState,
        *,
        owner: str | None = None,
        event: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Post:
        """Move a post to state ``to`` and update ``fields``, with a ``state`` event.

        Raises ``IllegalTransitionError`` unless the lifecycle allows the move.
        With ``owner``, the caller asserts it holds the lease (``LeaseHeldError``
        otherwise); without it the move is administrative, e.g. a user cancelling
        a post that a daemon is uploading (the daemon learns at its next
        checkpoint). Entering ``uploading`` from another state takes the lease
        and so needs ``owner`` (:meth:`claim` is the usual way); leaving
        ``uploading`` releases it. ``fields``: upload_url, offset, attempts,
        next_attempt_at, last_error (stored redacted), sha256, upload_expires_at,
        extra (replaced whole), size, mtime_ns. ``event`` adds data to the event.
        """
        to = PostState(to)
        values = codec.field_values(fields, codec.TRANSITION_FIELDS, what="transition")
        with self.atomic():
            now = self._clock()
            post = self._load(post_id)
            if not can_transition(post.state, to):
                raise IllegalTransitionError(
                    f"post {post_id} cannot go from {post.state.value} to {to.value}"
                )
            if to is _UPLOADING and post.state is not _UPLOADING:
                if owner is None:
                    raise ValueError("entering uploading takes the lease: pass owner= or claim()")
                self._take_part(owner)
                values.update(lease_owner=owner, lease_expires_at=now + DEFAULT_LEASE_S)
            else:
                if owner is not None:
                    self._require_lease(post, owner)
                if post.state is _UPLOADING and to is not _UPLOADING:
                    values.update(lease_owner=None, lease_expires_at=None)
            values.update(state=to.value, updated_at=now)
            self._write(post, values)
            data = {**(event or {}), "from": post.state.value, "to": to.value}
            if owner is not None:
                data["owner"] = owner
            if "last_error" in values:
                data["last_error"] = values["last_error"]
            self._event(post_id, now, "state", data)
            return self._load(post_id)

    def checkpoint(
        self, post_id: str, *, owner: str, lease_s: float = DEFAULT_LEASE_S, **fields: Any
    ) -> Post:
        """Save an uploading post's progress and renew ``owner``'s lease for ``lease_s``.

        ``fields``: upload_url, offset, sha256, upload_expires_at, extra, attempts.
        Journal a new upload URL *before* sending bytes to it. The offset never
        goes back within one upload (``JournalError``); a new ``upload_url``
        starts a new upload, at offset 0 unless given. Raises
        ``IllegalTransitionError`` if the post is no longer uploading (e.g.
        cancelled) and ``LeaseHeldError`` if another worker took it over: in
        both cases stop working on it.
        """
        lease_s = check_lease_s(lease_s)
        values = codec.field_values(fields, codec.CHECKPOINT_FIELDS, what="checkpoint")
        with self.atomic():
            now = self._clock()
            post = self._load(post_id)
            if post.state is not _UPLOADING:
                raise IllegalTransitionError(f"post {post_id} is {post.state.value}, not uploading")
            self._require_lease(post, owner)
            new_url = values.get("upload_url", post.upload_url)
            if new_url == post.upload_url and values.get("offset", post.offset) < post.offset:
                raise JournalError(
                    f"post {post_id}: the offset would go back from {post.offset} to "
                    f"{values['offset']} within the same upload"
                )
            values.update(lease_expires_at=now + lease_s, updated_at=now)
            self._write(post, values)
            if new_url != post.upload_url:
                note = {"message": "new upload", "upload_url": new_url, "owner": owner}
                self._event(post_id, now, "note", note)
            return self._load(post_id)
