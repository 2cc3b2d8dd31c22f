"""The simulated YouTube side of one upload session: its bytes, its chunk ``PUT`` s, its video.

As the resumable upload guide describes it: ``PUT {session}`` with
``Content-Range: bytes FIRST-LAST/TOTAL`` (chunks in multiples of 256 KiB,
except the last); ``308`` with ``Range: bytes=0-N`` while bytes are missing
(no ``Range`` when none arrived); ``201`` with the ``video`` resource once
every byte arrived. ``PUT`` with ``Content-Range: bytes */TOTAL`` and no body
asks for the offset, and after the end answers the final answer again.

Undocumented, so configurable (:class:`~steadypost.testing.YouTubeConfig`):
how long a session lives (``session_lifetime_s``; then ``404``), what an
interrupted chunk leaves (``keep_partial``: the 256 KiB pieces that arrived),
and that a gap (a chunk starting past the held bytes) is refused with ``400``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from steadypost.testing.apps.tus import parse_int
from steadypost.testing.exchange import Done
from steadypost.testing.faults import RejectMedia
from steadypost.testing.messages import Reply, RequestHead, json_reply
from steadypost.testing.storage import UploadStorage

GRANULE = 256 * 1024
REJECTION_REASONS = frozenset({"copyright", "inappropriate", "duplicate", "termsOfUse",
                               "uploaderAccountSuspended", "length", "claim",
                               "uploaderAccountClosed", "trademark", "legal"})  # fmt: skip
FAILURE_REASONS = frozenset({"conversion", "invalidFile", "emptyFile", "tooSmall", "codec",
                             "uploadAborted"})  # fmt: skip
_RANGE = re.compile(r"^bytes (?:\*|(\d+)-(\d+))/(\d+)$")


def google_error(status: int, reason: str, message: str = "", domain: str = "youtube") -> Reply:
    """Google's error body: ``{"error": {"code", "message", "errors": [{"reason"}]}}``."""
    body = {"error": {"code": status, "message": message or reason, "errors": [
        {"message": message or reason, "domain": domain, "reason": reason}]}}  # fmt: skip
    return json_reply(status, body)


@dataclass(frozen=True)
class YouTubeVideoInfo:
    """One video (a finished session) as of the current clock time."""

    video_id: str
    session_id: str
    size: int
    sha256: str
    upload_status: str
    processing_status: str
    title: str
    privacy_status: str
    created_at: float
    failure_reason: str | None = None
    rejection_reason: str | None = None
    resource: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass
class Session:
    """The simulator's mutable record of one resumable session."""

    session_id: str
    size: int
    mime: str
    resource: Mapping[str, Any]
    created_at: float
    processing_s: float
    failure: RejectMedia | None
    held: int = 0
    busy: bool = False
    lapsed: bool = False
    final: Reply | None = None
    video_id: str | None = None
    completed_at: float | None = None
    sha256: str = ""
    duplicate: bool = False

    @property
    def storage_key(self) -> str:
        return f"youtube-{self.session_id}"

    def status(self, now: float) -> tuple[str, str, str | None, str | None]:
        """``(uploadStatus, processingStatus, failureReason, rejectionReason)``."""
        assert self.completed_at is not None
        if now < self.completed_at + self.processing_s:
            return "uploaded", "processing", None, None
        if self.duplicate:
            return "rejected", "succeeded", None, "duplicate"
        if self.failure is not None:
            reason = self.failure.reason
            if reason in REJECTION_REASONS:
                return "rejected", "succeeded", None, reason
            return "failed", "failed", reason if reason in FAILURE_REASONS else "codec", None
        return "processed", "succeeded", None, None

    def video(self, now: float) -> dict[str, Any]:
        """The ``video`` resource as ``videos.list`` (and the final answer) shows it."""
        upload, phase, failure, rejection = self.status(now)
        snippet = dict(self.resource.get("snippet") or {})
        status: dict[str, Any] = {"uploadStatus": upload, "privacyStatus": str(
            (self.resource.get("status") or {}).get("privacyStatus") or "public")}  # fmt: skip
        if failure:
            status["failureReason"] = failure
        if rejection:
            status["rejectionReason"] = rejection
        return {"kind": "youtube#video", "id": self.video_id, "snippet": snippet,
                "status": status, "processingDetails": {"processingStatus": phase}}

    def info(self, now: float) -> YouTubeVideoInfo:
        upload, phase, failure, rejection = self.status(now)
        resource = self.video(now)
        return YouTubeVideoInfo(
            video_id=self.video_id or "", session_id=self.session_id, size=self.size,
            sha256=self.sha256, upload_status=upload, processing_status=phase,
            title=str(resource["snippet"].get("title") or ""),
            privacy_status=resource["status"]["privacyStatus"], created_at=self.created_at,
            failure_reason=failure, rejection_reason=rejection,
            resource=MappingProxyType(resource),
        )  # fmt: skip

    def offset_reply(self) -> Reply:
        """``308 Resume Incomplete``, with ``Range`` once any byte arrived."""
        if self.held == 0:
            return Reply(308)
        return Reply(308, (("Range", f"bytes=0-{self.held - 1}"),))


def parse_chunk(head: RequestHead, session: Session) -> tuple[int, int] | Reply | None:
    """``(first, length)`` of a chunk, ``None`` for an offset probe, or the answer refusing it."""
    match = _RANGE.match((head.header("content-range") or "").strip())
    if match is None:
        return google_error(400, "badContent", "Content-Range: bytes FIRST-LAST/TOTAL required")
    first_s, last_s, total_s = match.groups()
    if int(total_s) != session.size:
        return google_error(400, "badContent", "the total differs from X-Upload-Content-Length")
    length = parse_int(head.header("content-length")) or 0
    if first_s is None:
        return None if length == 0 else google_error(400, "badContent", "a probe has no body")
    first, last = int(first_s), int(last_s)
    if last < first or last >= session.size or length != last - first + 1:
        return google_error(400, "badContent", "Content-Range and Content-Length disagree")
    if first > session.held:
        return google_error(400, "badContent", f"a gap: {session.held} bytes are held")
    if last + 1 < session.size and length % GRANULE:
        return google_error(400, "badContent", "chunks are multiples of 256 KiB but the last")
    return first, length


class SessionSink:
    """Stores one chunk ``PUT``; bytes YouTube already holds are skipped."""

    stores_body = True

    def __init__(
        self, session: Session, storage: UploadStorage, *, first: int, length: int,
        keep_partial: bool, clock: Callable[[], float], lock: threading.RLock,
        finish: Callable[[Session], Reply],
    ) -> None:  # fmt: skip
        self._session = session
        self._storage = storage
        self._position = first
        self._end = first + length
        self._start = session.held
        self._keep_partial = keep_partial
        self._clock = clock
        self._lock = lock
        self._finish = finish
        session.busy = True

    def write(self, data: bytes) -> None:
        with self._lock:
            s = self._session
            skip = max(0, s.held - self._position)
            fresh = data[skip: self._end - self._position]
            self._position += len(data)
            if fresh:
                self._storage.append(s.storage_key, fresh)
                s.held += len(fresh)

    def finish(self) -> Done:
        with self._lock:
            s = self._session
            s.busy = False
            if s.held >= s.size:
                return Done(self._finish(s), step="patch", final=True)
            return Done(s.offset_reply(), step="patch")

    def abandon(self) -> None:
        with self._lock:
            s = self._session
            s.busy = False
            kept = s.held - (s.held - self._start) % GRANULE if self._keep_partial else self._start
            if s.held >= s.size and self._keep_partial:
                self._finish(s)  # every byte arrived: the video exists, the answer was lost
                return
            self._storage.truncate(s.storage_key, kept)
            s.held = kept


def video_json(session: Session, now: float) -> bytes:
    return json.dumps(session.video(now), separators=(",", ":")).encode()
