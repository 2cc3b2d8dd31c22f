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
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # re-exported, loaded on first use (see __getattr__ at the end)
    from steadypost._transfer import DEFAULT_EXCHANGE_S as DEFAULT_EXCHANGE_S
    from steadypost._transfer import DEFAULT_MIN_RATE as DEFAULT_MIN_RATE
    from steadypost._transfer import LocalFile as LocalFile
    from steadypost._transfer import Progress as Progress
    from steadypost._transfer import ProgressKind as ProgressKind
    from steadypost._transfer import Timeouts as Timeouts
    from steadypost._transfer import UploadResult as UploadResult

#: The moment a time field has when nothing set it (``1970-01-01T00:00:00Z``).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc(value: datetime | float | None, name: str = "time") -> datetime | None:
    """A timezone-aware UTC ``datetime`` from epoch seconds or an aware ``datetime``.

    ``None`` stays ``None``. A naive ``datetime`` (no ``tzinfo``) is refused with
    ``ValueError``: it would be read as local time by some and as UTC by others.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, not the naive {value!r}")
        return value.astimezone(timezone.utc)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a datetime or epoch seconds, not {value!r}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def epoch(moment: datetime | None) -> float | None:
    """UTC epoch seconds of an aware ``datetime`` (``None`` stays ``None``)."""
    return None if moment is None else moment.timestamp()


def _set_times(obj: object, names: tuple[str, ...]) -> None:
    """Turn a frozen dataclass's time fields into aware UTC datetimes (in ``__post_init__``).

    The exact epoch seconds are kept beside them (``_epochs``, not a field): a
    ``datetime`` holds microseconds, and a clock's float read back through one
    could land a hair after the moment it names (a post due "now" not due).
    """
    epochs: dict[str, float | None] = {}
    for name in names:
        value = getattr(obj, name)
        moment = utc(value, f"{type(obj).__name__}.{name}")
        object.__setattr__(obj, name, moment)
        exact = isinstance(value, (int, float)) and not isinstance(value, bool)
        epochs[name] = float(value) if exact else epoch(moment)
    object.__setattr__(obj, "_epochs", epochs)


def _epoch_of(obj: object, name: str) -> float | None:
    epochs: dict[str, float | None] = obj.__dict__["_epochs"]
    return epochs[name]


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


_POST_TIMES = ("next_attempt_at", "lease_expires_at", "created_at", "updated_at",
               "upload_expires_at")  # fmt: skip


@dataclass(frozen=True)
class Post:
    """One video that the user wants published once (a journal row).

    Its times (``created_at``, ``updated_at``, ``next_attempt_at``,
    ``lease_expires_at``, ``upload_expires_at``) are timezone-aware UTC
    ``datetime`` objects: ``post.next_attempt_at.astimezone()`` is local time,
    ``post.next_attempt_at - datetime.now(timezone.utc)`` the time left. Epoch
    seconds given to the constructor are turned into such datetimes. Code that
    computes with the uploader's ``clock`` (epoch seconds) reads the same
    moments as floats from the ``..._ts`` properties (``next_attempt_ts``, ...).
    """

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
    next_attempt_at: datetime | None = None
    """When the next upload attempt or verification is due (``None``: at once)."""
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    """Until when ``lease_owner`` holds the post (while ``uploading``)."""
    created_at: datetime = EPOCH
    updated_at: datetime = EPOCH
    upload_expires_at: datetime | None = None
    """When the platform forgets an unfinished upload (tus ``Upload-Expires``), if it said."""
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

    def __post_init__(self) -> None:
        _set_times(self, _POST_TIMES)

    # Epoch seconds of the same moments, for code that computes with a ``clock``.

    @property
    def next_attempt_ts(self) -> float | None:
        """``next_attempt_at`` as UTC epoch seconds."""
        return _epoch_of(self, "next_attempt_at")

    @property
    def lease_expires_ts(self) -> float | None:
        """``lease_expires_at`` as UTC epoch seconds."""
        return _epoch_of(self, "lease_expires_at")

    @property
    def created_ts(self) -> float:
        """``created_at`` as UTC epoch seconds."""
        return _epoch_of(self, "created_at") or 0.0

    @property
    def updated_ts(self) -> float:
        """``updated_at`` as UTC epoch seconds."""
        return _epoch_of(self, "updated_at") or 0.0

    @property
    def upload_expires_ts(self) -> float | None:
        """``upload_expires_at`` as UTC epoch seconds."""
        return _epoch_of(self, "upload_expires_at")

    @property
    def group(self) -> str | None:
        """The group id of a post made with others of the same video (``platforms=[...]``)."""
        group = self.extra.get("group")
        return group if isinstance(group, str) else None


@dataclass(frozen=True)
class JournalEvent:
    """One line of a post's append-only evidence log."""

    event_id: int
    post_id: str
    at: datetime
    """When it happened: a timezone-aware UTC ``datetime`` (epoch seconds are turned into one)."""
    kind: str
    """``state``, ``request``, ``response``, ``error``, ``wait``, ``note``."""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _set_times(self, ("at",))

    @property
    def at_ts(self) -> float:
        """``at`` as UTC epoch seconds."""
        return _epoch_of(self, "at") or 0.0


#: The transfer values live in :mod:`steadypost._transfer` and load on first use (PEP 562).
_TRANSFER = frozenset({"DEFAULT_EXCHANGE_S", "DEFAULT_MIN_RATE", "LocalFile", "Progress",
                       "ProgressKind", "Timeouts", "UploadResult"})  # fmt: skip

if TYPE_CHECKING:  # re-exported, loaded on first use (see __getattr__ at the end)
    from steadypost._transfer import DEFAULT_EXCHANGE_S as DEFAULT_EXCHANGE_S
    from steadypost._transfer import DEFAULT_MIN_RATE as DEFAULT_MIN_RATE
    from steadypost._transfer import LocalFile as LocalFile
    from steadypost._transfer import Progress as Progress
    from steadypost._transfer import ProgressKind as ProgressKind
    from steadypost._transfer import Timeouts as Timeouts
    from steadypost._transfer import UploadResult as UploadResult


def __getattr__(name: str) -> Any:
    if name not in _TRANSFER:
        raise AttributeError(f"module 'steadypost.models' has no attribute {name!r}")
    from steadypost import _transfer

    value = getattr(_transfer, name)
    globals()[name] = value
    return value
