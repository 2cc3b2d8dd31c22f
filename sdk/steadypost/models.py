"""Value objects shared by every layer: frozen dataclasses and enums only.

The post lifecycle (see ``DESIGN.md``)::

    queued ─► uploading ─► unconfirmed ─► confirmed
      │          │  ▲           │
      │          ▼  │           ▼ platform says: not processed / retryable failure
      │        waiting          queued again (same post id)
      ▼
    cancelled            failed (terminal)
"""

from __future__ import annotations

import enum
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class PostState(str, enum.Enum):
    """Where a post is in its lifecycle. Stored by value in the journal."""

    QUEUED = "queued"
    """Journaled, not started yet (or sent back by a verification)."""
    UPLOADING = "uploading"
    """A process holds the lease and is sending bytes."""
    WAITING = "waiting"
    """Interrupted by something temporary; ``next_attempt_at`` says when to go on."""
    UNCONFIRMED = "unconfirmed"
    """Every byte may have been processed, but no answer said so: verify later."""
    CONFIRMED = "confirmed"
    """The platform confirmed the post (terminal)."""
    FAILED = "failed"
    """Rejected for good: auth revoked, file changed, media refused (terminal)."""
    CANCELLED = "cancelled"
    """Cancelled by the user (terminal)."""

    @property
    def finished(self) -> bool:
        """True for the terminal states (confirmed, failed, cancelled)."""
        return self in _TERMINAL


_TERMINAL = frozenset({PostState.CONFIRMED, PostState.FAILED, PostState.CANCELLED})

#: The states a post can be uploaded from (``unconfirmed`` waits for its check instead).
UPLOADABLE: frozenset[PostState] = frozenset(
    {PostState.QUEUED, PostState.WAITING, PostState.UPLOADING}
)

#: The legal transitions; anything else raises ``IllegalTransitionError``.
#: Staying in the same state (e.g. uploading -> uploading to record an offset)
#: is always allowed for non-terminal states.
TRANSITIONS: Mapping[PostState, frozenset[PostState]] = MappingProxyType(
    {
        PostState.QUEUED: frozenset(
            {PostState.UPLOADING, PostState.WAITING, PostState.CANCELLED, PostState.FAILED}
        ),
        PostState.UPLOADING: frozenset(
            {
                PostState.WAITING,
                PostState.UNCONFIRMED,
                PostState.CONFIRMED,
                PostState.FAILED,
                PostState.CANCELLED,
                # A lease that expired (dead process) hands the post back.
                PostState.QUEUED,
            }
        ),
        PostState.WAITING: frozenset(
            {PostState.UPLOADING, PostState.QUEUED, PostState.CANCELLED, PostState.FAILED}
        ),
        PostState.UNCONFIRMED: frozenset(
            {PostState.CONFIRMED, PostState.QUEUED, PostState.FAILED, PostState.CANCELLED}
        ),
        PostState.CONFIRMED: frozenset(),
        PostState.FAILED: frozenset(),
        PostState.CANCELLED: frozenset(),
    }
)


def can_transition(src: PostState, dst: PostState) -> bool:
    """Whether the lifecycle allows ``src -> dst``."""
    if src == dst:
        return not src.finished
    return dst in TRANSITIONS[src]


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class FileIdentity:
    """What a post remembers of its file, so a changed file is never resumed.

    ``dev``, ``inode`` and ``ctime_ns`` are ``None`` where the OS does not
    have them (``ctime_ns`` on Windows, where it is the creation time) and for
    posts journaled by steadypost 0.1. The status-change time matters most:
    every write to a file moves it, and unlike the mtime it cannot be set
    back, so an in-place edit with its mtime restored is still seen. A file
    replaced by a rename has another inode.
    """

    size: int
    mtime_ns: int
    sha256: str | None = None
    """Hex digest; ``None`` until the file has been read once."""
    dev: int | None = None
    inode: int | None = None
    ctime_ns: int | None = None

    def differs_from(self, other: FileIdentity) -> str | None:
        """What changed between two snapshots of a file (``None``: the same file).

        Fields unknown on either side are not compared; the SHA-256 is not
        compared (a snapshot has none).
        """
        if self.size != other.size:
            return f"size {self.size} -> {other.size}"
        if self.mtime_ns != other.mtime_ns:
            return "its modification time changed"
        for name, what in (("dev", "it is on another device"), ("inode", "it was replaced"),
                           ("ctime_ns", "it was written to or its metadata changed")):  # fmt: skip
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                return what
        return None


@dataclass(frozen=True)
class LocalFile:
    """A snapshot of the file being uploaded (taken by the caller with ``os.stat``).

    ``dev``, ``inode`` and ``ctime_ns`` are ``None`` where unknown (see
    :class:`~steadypost.models.FileIdentity`).
    """

    path: str
    size: int
    mtime_ns: int
    dev: int | None = None
    inode: int | None = None
    ctime_ns: int | None = None

    @property
    def identity(self) -> FileIdentity:
        return FileIdentity(
            self.size, self.mtime_ns, dev=self.dev, inode=self.inode, ctime_ns=self.ctime_ns
        )

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    @property
    def filetype(self) -> str:
        return mimetypes.guess_type(self.path)[0] or "application/octet-stream"


@dataclass(frozen=True)
class Post:
    """One video that the user wants published once (a journal row)."""

    post_id: str
    platform: str
    endpoint: str
    path: str
    identity: FileIdentity
    state: PostState
    metadata: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    upload_url: str | None = None
    offset: int = 0
    attempts: int = 0
    next_attempt_at: float | None = None
    """UTC epoch seconds of the next upload attempt or verification."""
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    upload_expires_at: float | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Platform-specific state (e.g. TikTok's ``publish_id``), JSON-serialisable."""
    bytes_sent: int = 0
    """Request body bytes this post has put on the wire over all its runs (journaled as
    intent before each request), bounded by ``RetryPolicy.wire_factor``."""
    sent_to: int | None = None
    """The furthest byte of the current upload any request carried (``None``: unknown)."""
    lease_epoch: int = 0
    """Bumped at every claim: the fencing token of the current lease (see ``Journal.claim``)."""
    upload_host: str | None = None
    """The host whose worker may upload it, in a journal shared by several machines
    (``None``: any worker that can read the file)."""
    shared_prefix: str | None = None
    """The shared folder (mounted by every worker) that holds the file, if any."""


@dataclass(frozen=True)
class JournalEvent:
    """One line of a post's append-only evidence log."""

    event_id: int
    post_id: str
    at: float
    """UTC epoch seconds."""
    kind: str
    """``state``, ``request``, ``response``, ``error``, ``wait``, ``note``."""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: Seconds an exchange may take on top of its body's time at the minimum rate.
DEFAULT_EXCHANGE_S = 120.0
#: Bytes per second below which a request body is too slow to wait for (128 kbit/s).
DEFAULT_MIN_RATE = 16 * 1024


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long each part of an HTTP exchange may take (seconds; rates in bytes/s).

    ``connect``, ``read``, ``write`` and ``pool`` are httpx's per-operation
    timeouts: one connect, one socket read or write, or the wait for a pooled
    connection, ends after that long *without progress*. A server that answers
    one byte every second makes progress forever, so every exchange (connect,
    request body, status line, headers and the answer's body, capped at 1 MiB)
    also has a **deadline**::

        deadline = exchange + body_length / min_rate      (seconds, from the start)

    A missed deadline is a :class:`~steadypost.errors.ConnectionLostError`
    (outcome ``AMBIGUOUS``: the server may have acted), or a
    :class:`~steadypost.errors.ConnectFailedError` when the connection was not
    up yet. A request's ``timeout_s`` (a longer read timeout, e.g. for a slow
    final PATCH) raises its allowance to at least that.

    Why these defaults:

    * ``exchange = 120`` s is twice the read timeout: a healthy server that
      takes a minute to answer a final PATCH still makes it, and a HEAD, an
      OPTIONS or a POST whose answer drips ends after two minutes.
    * ``min_rate = 16 KiB/s`` (128 kbit/s) is half the slowest uplink still
      sold (256 kbit/s ADSL, a phone tethering on EDGE), so a slow home
      upload that a backup job or a video call halves is never cut. A default
      64 MiB chunk gets 4096 s + 120 s (70 min); a 1 MiB chunk 184 s. A server
      reading the body slower than that, or dripping its answer, is cut then.
      Smaller chunks give tighter bounds.

    Every value must be a positive, finite number (``ValueError`` otherwise).
    Only the uploader's own httpx clients enforce the deadline before the
    status line; see :mod:`steadypost.drivers.http` for a client you pass in.
    """

    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 10.0
    exchange: float = DEFAULT_EXCHANGE_S
    """Seconds for the exchange apart from the body's time at ``min_rate``."""
    min_rate: float = DEFAULT_MIN_RATE
    """Bytes per second the request body is given at least."""

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "exchange", "min_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 < value < float("inf")
            ):
                raise ValueError(f"Timeouts.{name} must be a positive number, not {value!r}")

    def allowance(self, read_override: float | None = None) -> float:
        """The fixed part of the deadline: ``exchange``, or a longer read override."""
        return max(self.exchange, read_override or 0.0)

    def deadline_s(self, body_length: int, read_override: float | None = None) -> float:
        """Seconds a whole exchange with a ``body_length``-byte body may take."""
        return self.allowance(read_override) + max(0, body_length) / self.min_rate


@dataclass(frozen=True)
class UploadResult:
    """What a finished (or resumed and finished) tus upload produced."""

    upload_url: str
    size: int
    offset: int
    sha256: str | None = None
    """The file's SHA-256 (hex), hashed while it was uploaded."""
    bytes_sent: int = 0
    """Bytes put on the wire by this run (re-sent bytes included)."""
    requests: int = 0


class ProgressKind(str, enum.Enum):
    BYTES = "bytes"
    WAIT = "wait"
    INFO = "info"


@dataclass(frozen=True)
class Progress:
    """Reported to the ``on_progress`` callback.

    ``kind == BYTES``: ``acknowledged`` of ``total`` bytes are on the server.
    ``kind == WAIT``: the upload waits ``wait_s`` seconds; ``message`` says
    why ("server busy (503), retrying in 42 s").
    """

    kind: ProgressKind
    acknowledged: int
    total: int
    sent: int = 0
    """Bytes handed to the network so far (>= ``acknowledged`` while a chunk is in flight)."""
    wait_s: float = 0.0
    message: str = ""
    """For a wait: the whole line to show ("server busy (503), retrying in 42 s")."""
    reason: str = ""
    """For a wait: only why ("server busy (503)")."""
