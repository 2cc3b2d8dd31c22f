"""The simulated TikTok side of one post: its state, its chunk ``PUT`` s, its status.

Documented behaviour (TikTok's media transfer guide and status page): chunks
go in order as ``PUT upload_url`` with ``Content-Range: bytes FIRST-LAST/TOTAL``
and a video ``Content-Type``; once every chunk arrived the post is processed,
then ``PUBLISH_COMPLETE`` (Direct Post) or ``SEND_TO_USER_INBOX`` (inbox), or
``FAILED`` with a ``fail_reason``.

Undocumented, so configurable (:class:`~steadypost.testing.TikTokConfig`):
the answer to a chunk (206 while chunks are missing, 201 once all arrived),
the answer to a ``PUT`` into an expired URL (410), and what happens to a chunk
sent again (accepted again, nothing stored twice).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from steadypost.testing.apps.tus import parse_int
from steadypost.testing.exchange import Done
from steadypost.testing.faults import RejectMedia
from steadypost.testing.messages import Reply, RequestHead, json_reply
from steadypost.testing.storage import UploadStorage

TikTokStatus = Literal[
    "PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD", "SEND_TO_USER_INBOX", "PUBLISH_COMPLETE", "FAILED"
]
#: The types TikTok's media transfer guide names for chunk uploads.
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm"})
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@dataclass(frozen=True)
class TikTokPublishInfo:
    """One init (``publish_id``) and where it stands at the current clock time."""

    publish_id: str
    mode: Literal["direct", "inbox"]
    status: TikTokStatus
    video_size: int
    chunk_size: int
    total_chunk_count: int
    received_bytes: int
    sha256: str
    """SHA-256 of the bytes received so far."""
    upload_url: str
    url_expires_at: float
    created_at: float
    completed_at: float | None = None
    """When the last chunk arrived (``None`` while chunks are missing)."""
    fail_reason: str | None = None
    post_info: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    late_puts: int = 0
    """``PUT`` requests that arrived after the upload URL expired."""


@dataclass
class Publish:
    """The simulator's mutable record of one init."""

    publish_id: str
    upload_id: str
    upload_token: str
    mode: Literal["direct", "inbox"]
    video_size: int
    chunk_size: int
    total_chunk_count: int
    upload_url: str
    url_expires_at: float
    created_at: float
    processing_s: float
    failure: RejectMedia | None
    post_info: Mapping[str, Any]
    received_chunks: int = 0
    received_bytes: int = 0
    completed_at: float | None = None
    late_puts: int = 0
    busy: bool = False

    @property
    def storage_key(self) -> str:
        return f"tiktok-{self.upload_id}"

    def status(self, now: float) -> tuple[TikTokStatus, str | None]:
        if self.completed_at is None or now < self.completed_at + self.processing_s:
            return "PROCESSING_UPLOAD", None
        if self.failure is not None:
            return "FAILED", self.failure.reason
        return ("PUBLISH_COMPLETE" if self.mode == "direct" else "SEND_TO_USER_INBOX"), None

    def pending(self, now: float) -> bool:
        """Counts toward TikTok's pending-share limit: in flight, or in the creator's inbox."""
        if self.completed_at is None:
            return now < self.url_expires_at  # an abandoned upload stops counting
        status, _ = self.status(now)
        return status == "PROCESSING_UPLOAD" or status == "SEND_TO_USER_INBOX"

    def chunk_range(self, index: int) -> tuple[int, int]:
        first = index * self.chunk_size
        final = index == self.total_chunk_count - 1
        return first, (self.video_size - 1 if final else first + self.chunk_size - 1)

    def info(self, now: float, sha256: str) -> TikTokPublishInfo:
        status, reason = self.status(now)
        return TikTokPublishInfo(
            publish_id=self.publish_id, mode=self.mode, status=status,
            video_size=self.video_size, chunk_size=self.chunk_size,
            total_chunk_count=self.total_chunk_count, received_bytes=self.received_bytes,
            sha256=sha256, upload_url=self.upload_url, url_expires_at=self.url_expires_at,
            created_at=self.created_at, completed_at=self.completed_at, fail_reason=reason,
            post_info=MappingProxyType(dict(self.post_info)), late_puts=self.late_puts,
        )  # fmt: skip

    def status_data(self, now: float) -> dict[str, Any]:
        """The ``data`` object of ``status/fetch``."""
        status, reason = self.status(now)
        data: dict[str, Any] = {"status": status, "uploaded_bytes": self.received_bytes}
        if reason is not None:
            data["fail_reason"] = reason
        public = status == "PUBLISH_COMPLETE" and self.post_info.get("privacy_level") != "SELF_ONLY"
        data["publicaly_available_post_id"] = [int(self.upload_id[:12], 16)] if public else []
        return data


@dataclass(frozen=True, kw_only=True)
class ChunkAnswers:
    """The undocumented answers of TikTok's upload URL."""

    partial: int = 206
    complete: int = 201
    expired: int = 410


class ChunkSink:
    """Stores one chunk ``PUT``; a chunk that breaks off is dropped whole."""

    stores_body = True

    def __init__(
        self, publish: Publish, storage: UploadStorage, *, first: int, length: int,
        answers: ChunkAnswers, clock: Callable[[], float], lock: threading.RLock,
    ) -> None:  # fmt: skip
        self._publish = publish
        self._storage = storage
        self._first = first
        self._length = length
        self._answers = answers
        self._clock = clock
        self._lock = lock
        self._written = 0
        publish.busy = True

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._length - self._written
            if data[:room]:
                self._storage.append(self._publish.storage_key, data[:room])
                self._written += len(data[:room])

    def finish(self) -> Done:
        with self._lock:
            pub = self._publish
            pub.busy = False
            if self._written != self._length:
                self._storage.truncate(pub.storage_key, self._first)
                return Done(tiktok_error(400, "invalid_params", "the chunk is not as long as "
                                         "its Content-Range says"))  # fmt: skip
            pub.received_chunks += 1
            pub.received_bytes += self._length
            final = pub.received_chunks == pub.total_chunk_count
            if final:
                pub.completed_at = self._clock()
            status = self._answers.complete if final else self._answers.partial
            return Done(Reply(status), step="patch", final=final)

    def abandon(self) -> None:
        with self._lock:
            self._publish.busy = False
            self._storage.truncate(self._publish.storage_key, self._first)


def tiktok_error(status: int, code: str, message: str = "") -> Reply:
    """TikTok's error envelope: ``{"data": {}, "error": {"code", "message", "log_id"}}``."""
    body = {"data": {}, "error": {"code": code, "message": message, "log_id": "sim-log"}}
    return json_reply(status, body)


def check_chunk(head: RequestHead, pub: Publish) -> tuple[int, int, int] | Reply:
    """``(index, first, length)`` of a chunk ``PUT``, or the answer refusing it."""
    content_type = (head.header("content-type") or "").split(";")[0].strip().lower()
    if content_type not in VIDEO_TYPES:
        allowed = ", ".join(sorted(VIDEO_TYPES))
        return tiktok_error(415, "invalid_params", f"Content-Type must be one of {allowed}")
    match = _RANGE.match((head.header("content-range") or "").strip())
    if match is None:
        wanted = "Content-Range: bytes FIRST-LAST/TOTAL required"
        return tiktok_error(400, "invalid_params", wanted)
    first, last, total = (int(g) for g in match.groups())
    index = first // pub.chunk_size
    if (total != pub.video_size or first % pub.chunk_size or index >= pub.total_chunk_count
            or (first, last) != pub.chunk_range(index)):  # fmt: skip
        return tiktok_error(400, "invalid_params", f"bytes {first}-{last}/{total} is not a chunk "
                            "of the init's plan")  # fmt: skip
    length = parse_int(head.header("content-length"))
    if length is not None and length != last - first + 1:
        return tiktok_error(400, "invalid_params", "Content-Length differs from Content-Range")
    if index > pub.received_chunks:
        return tiktok_error(400, "invalid_params", f"chunks go in order: chunk "
                            f"{pub.received_chunks + 1} comes next")  # fmt: skip
    return index, first, last - first + 1


def chunk_rule_problem(
    size: int, chunk: int, count: int, *, min_chunk: int, max_chunk: int,
    max_final: int, max_chunks: int,
) -> str | None:  # fmt: skip
    """Why an init's ``source_info`` breaks the media transfer guide's rules, or ``None``."""
    if size <= 0 or chunk <= 0:
        return "video_size and chunk_size must be positive"
    if count != size // chunk:
        return "total_chunk_count must be video_size / chunk_size rounded down"
    if not 1 <= count <= max_chunks:
        return f"total_chunk_count must be 1 to {max_chunks}"
    if size < min_chunk and chunk != size:
        return "a video under 5 MB goes whole (chunk_size = video_size)"
    if size > max_chunk and count < 2:
        return "a video over 64 MB goes in several chunks"
    if count > 1 and not min_chunk <= chunk <= max_chunk:
        return "chunks are 5 MB to 64 MB"
    if count == 1 and chunk > max_chunk:
        return "a single chunk is at most 64 MB"
    if size - (count - 1) * chunk > max_final:
        return "the final chunk is at most 128 MB"
    return None
