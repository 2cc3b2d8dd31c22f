"""What flows report while they run (carried by :class:`~steadypost.flow.Emit`).

The drivers hand these to an observer: the progress callback turns them into
:class:`~steadypost.models.Progress`, and the journal stores the upload URL and
the acknowledged offset the moment they are known (before the next request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerDiscovered:
    """The endpoint's capabilities were read (``OPTIONS``)."""

    endpoint: str
    info: Any
    """A :class:`~steadypost.platforms.tus.ServerInfo`."""


@dataclass(frozen=True)
class PlatformAnswered:
    """An answer from ``url``'s origin proved it is the platform (e.g. tus headers).

    Remembered per origin (in the journal's host table): from then on, failures
    there are an outage, not a misconfiguration.
    """

    url: str


@dataclass(frozen=True)
class UploadCreated:
    """The server made an upload resource; its URL must be journaled now.

    ``extra``: platform state journaled in the same transaction (top-level
    keys of the post's ``extra``, e.g. ``{"tiktok": {"publish_id": ...}}``).
    """

    upload_url: str
    expires_at: float | None
    offset: int
    extra: Mapping[str, Any] | None = None
    sent_to: int = 0
    """The furthest byte the creation request itself carried (creation-with-upload)."""


@dataclass(frozen=True)
class PlatformState:
    """Platform-specific facts to journal now, before the flow's next request.

    ``extra`` holds top-level keys of the post's ``extra`` to set (e.g. the
    intent to call TikTok's init, before the call). JSON values only.
    """

    extra: Mapping[str, Any]


@dataclass(frozen=True)
class UploadExpiresChanged:
    """The server announced a new ``Upload-Expires`` for the upload."""

    upload_url: str
    expires_at: float


@dataclass(frozen=True)
class OffsetAcknowledged:
    """The server holds ``offset`` of ``total`` bytes (from a PATCH answer or a HEAD)."""

    upload_url: str
    offset: int
    total: int


@dataclass(frozen=True)
class OffsetReported:
    """A HEAD answered: the server holds ``offset`` of ``total`` bytes right now.

    Sent on every HEAD, progress or not: it settles whether bytes sent before a
    failure arrived.
    """

    upload_url: str
    offset: int
    total: int


@dataclass(frozen=True)
class BodySending:
    """A request is about to carry bytes ``start`` to ``end`` of the file (intent).

    Journaled before the request goes out: the post's wire total grows by
    ``end - start``, and the furthest byte sent to ``upload_url`` becomes at
    least ``end`` (``upload_url`` is ``None`` for a creation request that
    carries the first bytes). A server claiming more than that is lying.
    """

    upload_url: str | None
    start: int
    end: int


@dataclass(frozen=True)
class BodyNotSent:
    """The request announced by the last :class:`BodySending` never left: uncount ``length``.

    Its connection could not be opened, or the host's guard held it back.
    """

    length: int


@dataclass(frozen=True)
class UploadRestarted:
    """The old upload is gone (404/410/expired): a new one is begun from byte 0."""

    old_upload_url: str | None
    reason: str
