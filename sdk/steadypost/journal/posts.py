"""Posts and their events: the part of the journal a flow uses most.

:class:`PostTable` holds the SQL (written once for both engines) and runs it
through its :class:`~steadypost.journal.engine.Engine`; the public methods of
:class:`~steadypost.journal.Journal` with the same names call it. Inside a
transaction, every post it reads is locked for the rest of it (a no-op on
SQLite, whose transactions hold the whole file; ``FOR UPDATE`` on
PostgreSQL), so a read-check-write is never interleaved with another worker's.

Fencing: a write by a worker names its lease (``owner``, and the
``epoch`` its claim got); if the post's lease is another's now, the write
raises :class:`~steadypost.errors.LeaseHeldError` and changes nothing.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from steadypost.errors import (
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    PostExistsError,
    PostNotFoundError,
)
from steadypost.journal import codec, owners
from steadypost.journal.engine import Engine
from steadypost.journal.redact import sanitize
from steadypost.models import FileIdentity, JournalEvent, Post, PostState, can_transition

DEFAULT_LEASE_S = 300.0
"""How long a claimed post stays reserved without a checkpoint or renew."""
EVENT_KINDS = frozenset({"request", "response", "error", "wait", "note", "verify"})
"""Kinds accepted by ``Journal.record`` (``state`` events come from transitions)."""

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


@dataclass(frozen=True)
class Place:
    """Where this process is, for a journal shared by several machines.

    ``host`` is this machine's name; ``shared_paths`` are the folders every
    worker of the fleet mounts at the same path (a post of a file under one
    of them may be uploaded anywhere it is mounted; any other post only on
    the host that added it).
    """

    host: str
    shared_paths: tuple[str, ...] = ()

    @classmethod
    def here(cls, host: str | None, shared_paths: Iterable[str | os.PathLike[str]]) -> Place:
        prefixes = tuple(os.path.join(os.path.abspath(os.fspath(p)), "") for p in shared_paths)
        return cls(host or owners.hostname(), prefixes)

    def shared_prefix(self, path: str) -> str | None:
        """The shared folder ``path`` is under, or ``None``."""
        return next((p for p in self.shared_paths if path.startswith(p)), None)

    def mounted(self) -> tuple[str, ...]:
        """The shared folders this process can read now (a worker claims only their posts)."""
        return tuple(p for p in self.shared_paths if os.access(p, os.R_OK | os.X_OK))


def check_lease_s(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise ValueError(f"lease_s must be a positive number of seconds, not {value!r}")
    return float(value)


def require_lease(post: Post, owner: str, epoch: int | None) -> None:
    """``LeaseHeldError`` unless ``owner`` (at ``epoch``, if given) holds the post's lease."""
    if post.lease_owner == owner and (epoch is None or post.lease_epoch == epoch):
        return
    stale = post.lease_owner == owner
    raise LeaseHeldError(
        f"post {post.post_id} ({post.state.value}) is not leased by {owner}"
        + (f" at epoch {epoch} (it is at {post.lease_epoch}: claimed again)" if stale else "")
        + f"; lease holder: {post.lease_owner or 'nobody'}. This worker lost the post"
    )


class PostTable:
    """Adding, reading, moving and annotating posts (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Callable[[], float], place: Place) -> None:
        self.engine = engine
        self.clock = clock
        self.place = place

    # --- plumbing -----------------------------------------------------------------------

    def load(self, post_id: str) -> Post:
        """The post's row; locked until the end of the transaction, if inside one."""
        lock = self.engine.dialect.for_update if self.engine.in_transaction else ""
        rows = self.engine.rows(codec.SELECT_POSTS + " WHERE post_id = ?" + lock, (post_id,))
        if not rows:
            raise PostNotFoundError(f"no post {post_id!r} in journal {self.engine.location}")
        return codec.post_from_row(rows[0])

    def event(self, post_id: str, at: float, kind: str, data: Mapping[str, Any]) -> None:
        self.engine.run(
            "INSERT INTO events (post_id, at, kind, data) VALUES (?, ?, ?, ?)",
            (post_id, at, kind, codec.dumps(sanitize(data))),
        )

    def write(self, post: Post, values: dict[str, Any]) -> None:
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
        self.engine.run(sql, (*values.values(), post.post_id))

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
        if self.engine.rows(_HOLDER_OF_KEY, (values["file_key"], post.post_id)):
            values["new_on_purpose"] = 1

    def take_part(self, owner: str) -> None:
        """Before a lease names ``owner``: this process holds its owner lock (and tidies up).

        See :mod:`steadypost.journal.owners`; run inside the transaction
        that writes the lease.
        """
        if owners.hold(self.engine.path, owner):
            in_use = {row[0] for row in self.engine.rows(_LEASE_OWNERS)}
            owners.sweep(self.engine.path, in_use)

    def lock_key(self, key: str) -> None:
        """Serialise this transaction with any other that locks ``key`` (PostgreSQL only)."""
        if self.engine.dialect.key_lock is not None:
            self.engine.rows(self.engine.dialect.key_lock, (key,))

    # --- the API ----------------------------------------------------------------------------

    def add_or_join(
        self, *, path: str | os.PathLike[str], endpoint: str, identity: FileIdentity,
        platform: str, metadata: Mapping[str, str], post_id: str | None,
        extra: Mapping[str, Any] | None, new: bool,
    ) -> AddResult:  # fmt: skip
        pid = codec.check_post_id(post_id) if post_id is not None else None
        for name, text in (("platform", platform), ("endpoint", endpoint)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"{name} must be a non-empty str, not {text!r}")
        absolute = os.path.abspath(os.fsdecode(path))
        values: dict[str, Any] = {
            "platform": platform,
            "endpoint": endpoint,
            "path": absolute,
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
        if self.engine.dialect.many_hosts:  # where the file can be read, for the fleet
            values["shared_prefix"] = self.place.shared_prefix(absolute)
            values["upload_host"] = None if values["shared_prefix"] else self.place.host
        values["file_key"] = codec.file_key(
            path=values["path"], identity=identity, endpoint=endpoint, platform=platform,
            account=codec.account_of(extra),
        )  # fmt: skip
        with self.engine.atomic():
            self.lock_key(values["file_key"])
            now = self.clock()
            values["post_id"] = pid or codec.new_post_id(clock=self.clock)
            if self.engine.rows("SELECT 1 FROM posts WHERE post_id = ?", (values["post_id"],)):
                raise PostExistsError(f"post {values['post_id']} is already in the journal")
            existing = self.engine.rows(_SAME_FILE, (values["file_key"],))
            if existing and not new:
                return AddResult(self.load(existing[0][0]), joined=True)
            values["new_on_purpose"] = int(bool(existing))
            values["created_at"] = values["updated_at"] = now
            columns = ", ".join(f'"{name}"' for name in values)
            marks = ", ".join("?" for _ in values)
            self.engine.run(f"INSERT INTO posts ({columns}) VALUES ({marks})",  # noqa: S608
                            tuple(values.values()))  # fmt: skip
            data: dict[str, Any] = {"from": None, "to": "queued"}
            if existing:
                data["new_on_purpose"] = f"another post of this file: {existing[0][0]}"
            self.event(values["post_id"], now, "state", data)
            return AddResult(self.load(values["post_id"]), joined=False)

    def list(
        self, *, state: PostState | Iterable[PostState] | None, limit: int | None
    ) -> builtins.list[Post]:
        sql, params = codec.SELECT_POSTS, builtins.list[Any]()
        if state is not None:
            wanted = [state] if isinstance(state, str) else builtins.list(state)
            params = [PostState(s).value for s in wanted]
            sql += f" WHERE state IN ({', '.join('?' for _ in params) or 'NULL'})"
        sql += " ORDER BY created_at, post_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(codec.non_negative("limit", limit))
        return [codec.post_from_row(row) for row in self.engine.rows(sql, params)]

    def events(self, post_id: str) -> builtins.list[JournalEvent]:
        rows = self.engine.rows(codec.SELECT_EVENTS + " WHERE post_id = ? ORDER BY event_id",
                                (post_id,))  # fmt: skip
        if not rows:
            self.load(post_id)  # every post has its creation event; maybe it is unknown
        return [codec.event_from_row(row) for row in rows]

    def record(
        self, post_id: str, kind: str, data: Mapping[str, Any], *, owner: str | None,
        epoch: int | None,
    ) -> None:  # fmt: skip
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind must be one of {sorted(EVENT_KINDS)}, not {kind!r}")
        with self.engine.atomic():
            post = self.load(post_id)
            if owner is not None:
                require_lease(post, owner, epoch)
            self.event(post_id, self.clock(), kind, data)

    def transition(
        self, post_id: str, to: PostState, *, owner: str | None, epoch: int | None,
        event: Mapping[str, Any] | None, lease_s: float, fields: Mapping[str, Any],
    ) -> Post:  # fmt: skip
        to = PostState(to)
        values = codec.field_values(fields, codec.TRANSITION_FIELDS, what="transition")
        with self.engine.atomic():
            now = self.clock()
            post = self.load(post_id)
            if not can_transition(post.state, to):
                raise IllegalTransitionError(
                    f"post {post_id} cannot go from {post.state.value} to {to.value}"
                )
            if to is _UPLOADING and post.state is not _UPLOADING:
                if owner is None:
                    raise ValueError("entering uploading takes the lease: pass owner= or claim()")
                self.take_part(owner)
                values.update(lease_owner=owner, lease_expires_at=now + lease_s,
                              lease_epoch=post.lease_epoch + 1)  # fmt: skip
            else:
                if owner is not None:
                    require_lease(post, owner, epoch)
                if post.lease_owner is not None and to is not _UPLOADING:
                    values.update(lease_owner=None, lease_expires_at=None)  # (or a check's)
            values.update(state=to.value, updated_at=now)
            self.write(post, values)
            data = {**(event or {}), "from": post.state.value, "to": to.value}
            if owner is not None:
                data["owner"] = owner
            if "last_error" in values:
                data["last_error"] = values["last_error"]
            self.event(post_id, now, "state", data)
            return self.load(post_id)

    def checkpoint(
        self, post_id: str, *, owner: str, epoch: int | None, lease_s: float,
        fields: Mapping[str, Any],
    ) -> Post:  # fmt: skip
        lease_s = check_lease_s(lease_s)
        values = codec.field_values(fields, codec.CHECKPOINT_FIELDS, what="checkpoint")
        with self.engine.atomic():
            now = self.clock()
            post = self.load(post_id)
            if post.state is not _UPLOADING:
                raise IllegalTransitionError(f"post {post_id} is {post.state.value}, not uploading")
            require_lease(post, owner, epoch)
            new_url = values.get("upload_url", post.upload_url)
            if new_url == post.upload_url and values.get("offset", post.offset) < post.offset:
                raise JournalError(
                    f"post {post_id}: the offset would go back from {post.offset} to "
                    f"{values['offset']} within the same upload"
                )
            values.update(lease_expires_at=now + lease_s, updated_at=now)
            self.write(post, values)
            if new_url != post.upload_url:
                note = {"message": "new upload", "upload_url": new_url, "owner": owner}
                self.event(post_id, now, "note", note)
            return self.load(post_id)


def placeholders(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``":p0, :p1"`` and ``{"p0": ..., "p1": ...}`` for an ``IN (...)`` list.

    No values give ``NULL``, which ``IN`` matches nothing with (PostgreSQL refuses ``IN ()``).
    """
    names = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(f":{name}" for name in names) or "NULL", names
