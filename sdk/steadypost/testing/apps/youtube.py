"""A YouTube-shaped platform: the Data API v3 resumable upload, videos.list, a token endpoint.

Served by :class:`~steadypost.testing.PlatformSimulator` beside the others (same
transport, :class:`~steadypost.testing.SimulatorServer` and fault rules), at
YouTube's paths, so a post's endpoint (or google-api-python-client's
``rootUrl``) is the simulator's base URL:

``POST /upload/youtube/v3/videos?uploadType=resumable&part=...``
    the ``video`` resource as JSON, ``X-Upload-Content-Length`` and
    ``X-Upload-Content-Type``; answers ``200`` with the session URI in
    ``Location`` (``...&upload_id=...``). Costs ``insert_cost`` quota units
    (403 ``quotaExceeded`` past ``quota_per_day``; the day ends at midnight
    Pacific on the fake clock); past ``uploads_per_day`` for the channel,
    400 ``uploadLimitExceeded``.
``PUT {session URI}``
    the chunks and the offset probe (see :mod:`.youtube_upload`).
``GET /youtube/v3/videos?part=status,processingDetails&id=...``  (1 unit)
    ``status.uploadStatus``: ``uploaded`` for ``processing_s`` after the last
    byte, then ``processed`` (or ``rejected`` / ``failed`` for a session begun
    while a ``RejectMedia`` rule was active: a reason YouTube names for
    rejections, such as ``"duplicate"``, is a rejection, anything else a
    failure); a second upload of bytes the channel already has is
    ``rejected`` as ``duplicate``, as on YouTube.
``POST /token``
    OAuth 2.0 ``grant_type=refresh_token`` for the ``refresh_tokens`` it knows;
    access tokens it issues expire after ``token_lifetime_s`` (then 401).

Fault rules: ``ProcessedButError`` / ``ProcessedButTimeout`` steps are
``"create"`` (the initiation), ``"patch"`` (a chunk) and ``"final_patch"``
(the chunk that completes the video); :func:`youtube_fault` answers with a
Google error reason (e.g. ``quotaExceeded``).
"""

from __future__ import annotations

import functools
import itertools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from steadypost.testing.apps._app import PlatformApp
from steadypost.testing.apps.youtube_upload import (
    Session,
    SessionSink,
    YouTubeVideoInfo,
    google_error,
    parse_chunk,
    video_json,
)
from steadypost.testing.exchange import BodySink, Buffered, Done, Fixed
from steadypost.testing.faults import RejectMedia, Respond, SlowProcessing
from steadypost.testing.messages import Reply, RequestHead, json_reply

UPLOAD_PATH = "/upload/youtube/v3/videos"
VIDEOS_PATH = "/youtube/v3/videos"
TOKEN_PATH = "/token"  # noqa: S105 - a path
_MAX_BODY = 1 << 20


@dataclass(frozen=True, kw_only=True)
class YouTubeConfig:
    """How the simulated YouTube behaves; undocumented parts are marked so."""

    tokens: frozenset[str] | None = None
    """Access tokens always accepted (``None``: any non-empty one, except expired issued ones)."""
    refresh_tokens: Mapping[str, str] = field(default_factory=dict)
    """Refresh token -> the client id it belongs to, for ``POST /token``."""
    token_lifetime_s: float = 3600.0
    quota_per_day: int = 10_000
    insert_cost: int = 1600
    """``videos.insert``'s cost on the quota page's table (another page says 1 unit of a
    separate bucket of 100 a day: sources disagree)."""
    uploads_per_day: int | None = None
    """The channel's cap of uploads per 24 hours (``None``: none)."""
    processing_s: float = 0.0
    session_lifetime_s: float | None = None
    """Undocumented ("finite"): an unfinished session answers 404 this long after it began."""
    keep_partial: bool = True
    """Undocumented: an interrupted chunk leaves the 256 KiB pieces that arrived."""
    reject_duplicates: bool = True


def youtube_fault(
    reason: str, *, status: int, path: str | None = UPLOAD_PATH, times: int | None = 1,
    retry_after: float | None = None, methods: set[str] | None = None,
) -> Respond:  # fmt: skip
    """A :class:`Respond` rule answering with Google's error body and ``reason``."""
    reply = google_error(status, reason)
    return Respond(status=status, body=reply.body, content_type="application/json", path=path,
                   times=times, retry_after=retry_after, methods=methods)  # fmt: skip


def quota_day(now: float) -> str:
    """The Pacific-time date the quota counts ``now`` in (its day ends at midnight PT)."""
    try:
        from zoneinfo import ZoneInfo

        zone: Any = ZoneInfo("America/Los_Angeles")
    except Exception:
        zone = timezone(timedelta(hours=-8))
    return datetime.fromtimestamp(now, zone).date().isoformat()


class YouTubeApp(PlatformApp[YouTubeConfig]):
    """The upload and videos endpoints and the token endpoint, over the simulator's storage."""

    def _begin(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._issued: dict[str, float] = {}
        self._units: dict[str, int] = {}
        self._uploads: list[float] = []
        self._ids = itertools.count(1)
        self.refreshes = 0

    @staticmethod
    def handles(path: str) -> bool:
        return path in (UPLOAD_PATH, VIDEOS_PATH, TOKEN_PATH)

    # --- inspection ---------------------------------------------------------------

    def videos(self) -> list[YouTubeVideoInfo]:
        """Every video (finished session), oldest first, as of the current clock time."""
        with self._lock:
            now = self._clock()
            return [s.info(now) for s in self._sessions.values() if s.video_id]

    def published(self) -> list[YouTubeVideoInfo]:
        """Videos that are or will be on the channel: finished and neither rejected nor failed."""
        return [v for v in self.videos() if v.upload_status in ("uploaded", "processed")]

    def video_bytes(self, video_id: str) -> bytes:
        with self._lock:
            session = next(s for s in self._sessions.values() if s.video_id == video_id)
            return self.storage.read(session.storage_key)

    def sessions(self) -> int:
        """How many sessions were started."""
        with self._lock:
            return len(self._sessions)

    def lapse_sessions(self) -> None:
        """Let every unfinished session lapse now (they answer 404 from now on)."""
        with self._lock:
            for session in self._sessions.values():
                if session.final is None:
                    session.lapsed = True

    def expire_tokens(self) -> None:
        """End every access token issued so far now (they answer 401 from now on)."""
        with self._lock:
            now = self._clock()
            self._issued = {token: min(at, now) for token, at in self._issued.items()}

    def quota_used(self) -> int:
        """Units charged today (Pacific time)."""
        with self._lock:
            return self._units.get(quota_day(self._clock()), 0)

    # --- routing --------------------------------------------------------------------

    def open(self, head: RequestHead) -> BodySink:
        if head.path == TOKEN_PATH:
            if head.method != "POST":
                return Fixed(json_reply(405, {"error": "invalid_request"}))
            return Buffered(self._refresh, limit=_MAX_BODY)
        query = parse_qs(head.query)
        if head.path == UPLOAD_PATH and head.method == "PUT" and query.get("upload_id"):
            return self._put(head, query["upload_id"][0])
        token = self._token(head)
        if token is None:
            return Fixed(google_error(401, "authError", "Invalid Credentials", "global"))
        if head.path == UPLOAD_PATH and head.method == "POST":
            if (query.get("uploadType") or [""])[0] != "resumable":
                return Fixed(google_error(400, "invalidUploadType", "use uploadType=resumable"))
            return Buffered(functools.partial(self._initiate, head), limit=_MAX_BODY)
        if head.path == VIDEOS_PATH and head.method == "GET":
            return Fixed(self._list(query))
        return Fixed(google_error(405, "methodNotAllowed", "not a YouTube method here"))

    def _token(self, head: RequestHead) -> str | None:
        scheme, _, token = (head.header("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            if token in self._issued:
                return token if self._clock() < self._issued[token] else None
        allowed = self.config.tokens
        return token if allowed is None or token in allowed else None

    def _charge(self, units: int) -> bool:
        """Charge the project's daily quota; ``False`` when it is used up (nothing charged)."""
        with self._lock:
            day = quota_day(self._clock())
            used = self._units.get(day, 0)
            if used + units > self.config.quota_per_day:
                return False
            self._units[day] = used + units
            return True

    # --- endpoints --------------------------------------------------------------------

    def _refresh(self, body: bytes) -> Done:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client = self.config.refresh_tokens.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or client is None or (
                client and client != form.get("client_id")):  # fmt: skip
            why = "Token has been expired or revoked."
            return Done(json_reply(400, {"error": "invalid_grant", "error_description": why}))
        with self._lock:
            access = f"ya29.sim-{secrets.token_hex(8)}"
            self._issued[access] = self._clock() + self.config.token_lifetime_s
            self.refreshes += 1
        return Done(json_reply(200, {
            "access_token": access, "expires_in": int(self.config.token_lifetime_s),
            "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/youtube.upload"}))

    def _initiate(self, head: RequestHead, body: bytes) -> Done:
        try:
            resource = json.loads(body or b"{}")
        except ValueError:
            return Done(google_error(400, "parseError", "the body is not JSON", "global"))
        snippet = resource.get("snippet") if isinstance(resource, dict) else None
        if not isinstance(snippet, dict) or not str(snippet.get("title") or "").strip():
            return Done(google_error(400, "invalidTitle", "the video needs a snippet.title"))
        length = (head.header("x-upload-content-length") or "").strip()
        if not length.isdigit() or int(length) <= 0:
            return Done(google_error(400, "badContent", "X-Upload-Content-Length is required"))
        with self._lock:
            now = self._clock()
            cap = self.config.uploads_per_day
            self._uploads = [t for t in self._uploads if t > now - 86400.0]
            if cap is not None and len(self._uploads) >= cap:
                return Done(google_error(400, "uploadLimitExceeded",
                                         "The user has exceeded the number of videos they may "
                                         "upload."))  # fmt: skip
            if not self._charge(self.config.insert_cost):
                return Done(google_error(403, "quotaExceeded", "The request cannot be completed "
                                         "because you have exceeded your quota.",
                                         "youtube.quota"))  # fmt: skip
            self._uploads.append(now)
            slow = self._faults.take(SlowProcessing, now)
            session = Session(
                session_id=secrets.token_urlsafe(12), size=int(length),
                mime=head.header("x-upload-content-type") or "video/*", resource=resource,
                created_at=now, processing_s=slow.seconds if slow else self.config.processing_s,
                failure=self._faults.take(RejectMedia, now),
            )  # fmt: skip
            self._sessions[session.session_id] = session
            self.storage.create(session.storage_key)
        location = f"{head.origin}{UPLOAD_PATH}?uploadType=resumable&upload_id={session.session_id}"
        return Done(Reply(200, (("Location", location), ("Content-Length", "0"))), step="create")

    def _put(self, head: RequestHead, session_id: str) -> BodySink:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return Fixed(google_error(404, "notFound", "no such upload session"))
            if session.final is not None:
                return Fixed(session.final)  # after the end: the final answer again
            lifetime = self.config.session_lifetime_s
            if session.lapsed or (lifetime is not None
                                  and self._clock() >= session.created_at + lifetime):
                session.lapsed = True
                return Fixed(google_error(404, "notFound", "the upload session lapsed"))
            if head.header("authorization") and self._token(head) is None:
                return Fixed(google_error(401, "authError", "Invalid Credentials", "global"))
            chunk = parse_chunk(head, session)
            if isinstance(chunk, Reply):
                return Fixed(chunk)
            if chunk is None:
                return Fixed(session.offset_reply())
            if session.busy:
                return Fixed(google_error(503, "backendError", "a chunk is being received"))
            first, length = chunk
            return SessionSink(session, self.storage, first=first, length=length,
                               keep_partial=self.config.keep_partial, clock=self._clock,
                               lock=self._lock, finish=self._finish)  # fmt: skip

    def _finish(self, session: Session) -> Reply:
        """Every byte arrived: the video exists (answered ``201``, and so ever after)."""
        now = self._clock()
        session.sha256 = self.storage.sha256(session.storage_key)
        session.video_id = f"sim{next(self._ids):08d}"
        session.completed_at = now
        if self.config.reject_duplicates:
            session.duplicate = any(
                s is not session and s.video_id and s.sha256 == session.sha256
                and not s.duplicate for s in self._sessions.values()
            )
        session.final = Reply(201, (("Content-Type", "application/json"),),
                              video_json(session, now))  # fmt: skip
        return session.final

    def _list(self, query: Mapping[str, list[str]]) -> Reply:
        if not self._charge(1):
            return google_error(403, "quotaExceeded", "quota exceeded", "youtube.quota")
        wanted = set(",".join(query.get("id") or []).split(","))
        with self._lock:
            now = self._clock()
            items = [s.video(now) for s in self._sessions.values()
                     if s.video_id and s.video_id in wanted]  # fmt: skip
        return json_reply(200, {"kind": "youtube#videoListResponse", "items": items,
                                "pageInfo": {"totalResults": len(items)}})
