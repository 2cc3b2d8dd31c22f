"""What moves bytes: the local file, timeouts, progress and results (part of :mod:`.models`).

Kept apart from the journal's values (``Post``, ``JournalEvent``) so that reading the
journal (``steadypost list``) does not build classes it never uses; import them from
:mod:`steadypost.models` (or ``steadypost``) as always.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steadypost.models import FileIdentity


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
        from steadypost.models import FileIdentity

        return FileIdentity(
            self.size, self.mtime_ns, dev=self.dev, inode=self.inode, ctime_ns=self.ctime_ns
        )

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    @property
    def filetype(self) -> str:
        import mimetypes  # here: reading the system's type tables takes a while

        return mimetypes.guess_type(self.path)[0] or "application/octet-stream"


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
    post_id: str = ""
    """The journaled post this is about (``""`` for ``upload()``): several posts of a group,
    or of ``resume_pending()``, may report at once, each from its own thread or task."""
