"""A TikTok-shaped platform: the Content Posting API as its documentation describes it.

Served by :class:`~steadypost.testing.PlatformSimulator` beside tus (same
transport, same :class:`~steadypost.testing.SimulatorServer`, same fault
rules), at TikTok's paths:

``POST /v2/post/publish/creator_info/query/``  (20 per minute per token)
    ``privacy_level_options`` and ``max_video_post_duration_sec``.
``POST /v2/post/publish/video/init/`` and ``/v2/post/publish/inbox/video/init/``  (6/min)
    ``source_info`` with ``FILE_UPLOAD``, checked against the chunk rules
    (``invalid_params``); Direct Post's ``post_info.privacy_level`` must be
    allowed (``privacy_level_option_mismatch``); too many pending shares gives
    403 ``spam_risk_too_many_pending_share``. Answers ``publish_id`` and an
    ``upload_url`` that expires after ``url_lifetime_s``.
``PUT {upload_url}``
    the chunks (see :mod:`.tiktok_upload`).
``POST /v2/post/publish/status/fetch/``  (30/min)
    ``status``, ``fail_reason``, ``uploaded_bytes``, ``publicaly_available_post_id``.

Every answer uses TikTok's envelope ``{"data", "error": {"code", "message",
"log_id"}}``; a missing or unknown token is 401 ``access_token_invalid``, a
missing scope 401 ``scope_not_authorized``, a request over a rate limit 429
``rate_limit_exceeded``. Fault rules: ``ProcessedButError`` /
``ProcessedButTimeout`` steps are ``"create"`` (init), ``"patch"`` (a chunk)
and ``"final_patch"`` (the last chunk); ``RejectMedia`` and ``SlowProcessing``
apply to inits made while they are active; :func:`tiktok_fault` answers any
endpoint with a TikTok error code.
"""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from steadypost.testing.apps._app import PlatformApp
from steadypost.testing.apps.tiktok_upload import (
    ChunkAnswers,
    ChunkSink,
    Publish,
    TikTokPublishInfo,
    check_chunk,
    chunk_rule_problem,
    tiktok_error,
)
from steadypost.testing.apps.tus import other_origin_of
from steadypost.testing.exchange import BodySink, Buffered, Done, Fixed
from steadypost.testing.faults import RejectMedia, Respond, SlowProcessing
from steadypost.testing.messages import Reply, RequestHead, json_reply

API_PREFIX = "/v2/post/publish/"
CREATOR_INFO_PATH = "/v2/post/publish/creator_info/query/"
DIRECT_INIT_PATH = "/v2/post/publish/video/init/"
INBOX_INIT_PATH = "/v2/post/publish/inbox/video/init/"
STATUS_PATH = "/v2/post/publish/status/fetch/"
#: Where upload URLs point, as in the guide's example ``/video/?upload_id=..&upload_token=..``.
UPLOAD_PATH = "/video/"
DEFAULT_PRIVACY_OPTIONS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
MB, MIB = 1_000_000, 1024 * 1024
_MAX_BODY = 1 << 20
_SCOPES = {DIRECT_INIT_PATH: "video.publish", INBOX_INIT_PATH: "video.upload",
           CREATOR_INFO_PATH: "video.publish"}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TikTokConfig:
    """How the simulated TikTok behaves; undocumented parts are marked so."""

    privacy_level_options: tuple[str, ...] = DEFAULT_PRIVACY_OPTIONS
    """What ``creator_info`` allows (an unaudited app: ``("SELF_ONLY",)``)."""
    max_video_post_duration_sec: int = 600
    tokens: frozenset[str] | None = None
    """Accepted bearer tokens (``None``: any non-empty one)."""
    scopes: frozenset[str] = frozenset({"video.publish", "video.upload"})
    init_per_minute: int = 6
    status_per_minute: int = 30
    creator_info_per_minute: int = 20
    url_lifetime_s: float = 3600.0
    """One hour (from a secondary copy of TikTok's docs)."""
    upload_origin: str | None = None
    """Origin of upload URLs (``None``: another origin than the API's, as on TikTok:
    the other loopback name of the one the init used, see ``other_origin_of``)."""
    processing_s: float = 0.0
    max_pending_shares: int = 5
    """Secondary source: at most 5 pending shares per 24 hours."""
    chunk_answers: ChunkAnswers = field(default_factory=ChunkAnswers)
    """Undocumented: 206 / 201 per chunk, 410 for an expired URL."""
    min_chunk: int = 5 * MIB
    max_chunk: int = 64 * MB
    max_final_chunk: int = 128 * MB
    max_chunks: int = 1000


def tiktok_fault(
    code: str, *, status: int, path: str | None = DIRECT_INIT_PATH, times: int | None = 1,
    retry_after: float | None = None, message: str = "",
) -> Respond:  # fmt: skip
    """A :class:`Respond` rule answering with TikTok's error envelope and ``code``."""
    body = {"data": {}, "error": {"code": code, "message": message, "log_id": "sim-fault"}}
    return Respond(
        status=status, body=json.dumps(body).encode(), content_type="application/json",
        path=path, times=times, retry_after=retry_after, methods={"POST"},
    )  # fmt: skip


class TikTokApp(PlatformApp[TikTokConfig]):
    """TikTok's publish API and upload URLs, backed by the simulator's storage."""

    def _begin(self) -> None:
        self._publishes: dict[str, Publish] = {}
        self._by_upload: dict[str, Publish] = {}
        self._calls: dict[tuple[str, str], deque[float]] = {}
        self._ids = itertools.count(1)

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(API_PREFIX) or path.rstrip("/") == UPLOAD_PATH.rstrip("/")

    # --- inspection ---------------------------------------------------------------

    def publishes(self) -> list[TikTokPublishInfo]:
        """Every init, oldest first, as of the current clock time."""
        with self._lock:
            now = self._clock()
            return [p.info(now, self.storage.sha256(p.storage_key))
                    for p in self._publishes.values()]  # fmt: skip

    def published(self) -> list[TikTokPublishInfo]:
        """Posts that are or will be live (or in the inbox): every chunk arrived, not failed."""
        return [p for p in self.publishes() if p.completed_at is not None and p.status != "FAILED"]

    def video_bytes(self, publish_id: str) -> bytes:
        return self.storage.read(self._publishes[publish_id].storage_key)

    # --- routing --------------------------------------------------------------------

    def open(self, head: RequestHead) -> BodySink:
        if not head.path.startswith(API_PREFIX):
            return self._put(head)
        if head.method != "POST":
            return Fixed(tiktok_error(405, "invalid_params", "use POST"))
        limits = {CREATOR_INFO_PATH: self.config.creator_info_per_minute,
                  DIRECT_INIT_PATH: self.config.init_per_minute,
                  INBOX_INIT_PATH: self.config.init_per_minute,
                  STATUS_PATH: self.config.status_per_minute}  # fmt: skip
        if head.path not in limits:
            return Fixed(tiktok_error(404, "invalid_params", "no such endpoint"))
        token = self._token(head)
        if token is None:
            return Fixed(tiktok_error(401, "access_token_invalid", "missing or unknown token"))
        scope = _SCOPES.get(head.path)
        if scope is not None and scope not in self.config.scopes:
            return Fixed(tiktok_error(401, "scope_not_authorized", f"{scope} not granted"))
        if not self._take_slot(token, head.path, limits[head.path]):
            return Fixed(tiktok_error(429, "rate_limit_exceeded", "too many requests"))
        act: Callable[[bytes], Done]
        if head.path == CREATOR_INFO_PATH:
            act = self._creator_info
        elif head.path == STATUS_PATH:
            act = self._status
        else:
            act = functools.partial(self._init, head, direct=head.path == DIRECT_INIT_PATH)
        return Buffered(act, limit=_MAX_BODY)

    def _token(self, head: RequestHead) -> str | None:
        scheme, _, token = (head.header("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        allowed = self.config.tokens
        return token if allowed is None or token in allowed else None

    def _take_slot(self, token: str, path: str, limit: int) -> bool:
        """A sliding minute per token and endpoint; every request that got here counts."""
        with self._lock:
            now = self._clock()
            calls = self._calls.setdefault((token, path), deque())
            while calls and calls[0] <= now - 60.0:
                calls.popleft()
            calls.append(now)
            return len(calls) <= limit

    # --- endpoints ------------------------------------------------------------------

    def _creator_info(self, body: bytes) -> Done:
        data = {
            "creator_avatar_url": "https://sim.invalid/avatar.jpg",
            "creator_username": "sim_creator", "creator_nickname": "Simulated Creator",
            "privacy_level_options": list(self.config.privacy_level_options),
            "comment_disabled": False, "duet_disabled": False, "stitch_disabled": False,
            "max_video_post_duration_sec": self.config.max_video_post_duration_sec,
        }  # fmt: skip
        return Done(_ok(data))

    def _init(self, head: RequestHead, body: bytes, *, direct: bool) -> Done:
        request = _json(body)
        source = _object(request.get("source_info"))
        if source.get("source") != "FILE_UPLOAD":
            return Done(tiktok_error(400, "invalid_params", "the simulator takes FILE_UPLOAD"))
        try:
            size, chunk, count = (int(source[k]) for k in
                                  ("video_size", "chunk_size", "total_chunk_count"))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return Done(tiktok_error(400, "invalid_params", "video_size, chunk_size and "
                                     "total_chunk_count are required"))  # fmt: skip
        cfg = self.config
        problem = chunk_rule_problem(
            size, chunk, count, min_chunk=cfg.min_chunk, max_chunk=cfg.max_chunk,
            max_final=cfg.max_final_chunk, max_chunks=cfg.max_chunks,
        )  # fmt: skip
        if problem:
            return Done(tiktok_error(400, "invalid_params", problem))
        info = _object(request.get("post_info"))
        if direct and info.get("privacy_level") not in cfg.privacy_level_options:
            why = "privacy_level is not one of the creator's options"
            return Done(tiktok_error(400, "privacy_level_option_mismatch", why))
        with self._lock:
            now = self._clock()
            if sum(p.pending(now) for p in self._publishes.values()) >= cfg.max_pending_shares:
                return Done(tiktok_error(403, "spam_risk_too_many_pending_share",
                                         "too many pending shares"))  # fmt: skip
            slow = self._faults.take(SlowProcessing, now)
            upload_id, token = uuid.uuid4().hex, uuid.uuid4().hex
            origin = (cfg.upload_origin or other_origin_of(head.origin)).rstrip("/")
            pub = Publish(
                publish_id=f"v_pub_file~v2-1.{next(self._ids)}", upload_id=upload_id,
                upload_token=token, mode="direct" if direct else "inbox", video_size=size,
                chunk_size=chunk, total_chunk_count=count,
                upload_url=f"{origin}{UPLOAD_PATH}?upload_id={upload_id}&upload_token={token}",
                url_expires_at=now + cfg.url_lifetime_s, created_at=now,
                processing_s=slow.seconds if slow else cfg.processing_s,
                failure=self._faults.take(RejectMedia, now), post_info=dict(info),
            )  # fmt: skip
            self._publishes[pub.publish_id] = pub
            self._by_upload[upload_id] = pub
            self.storage.create(pub.storage_key)
        return Done(_ok({"publish_id": pub.publish_id, "upload_url": pub.upload_url}),
                    step="create")  # fmt: skip

    def _status(self, body: bytes) -> Done:
        publish_id = _json(body).get("publish_id")
        with self._lock:
            pub = self._publishes.get(publish_id) if isinstance(publish_id, str) else None
            if pub is None:
                return Done(tiktok_error(400, "invalid_params", "unknown publish_id"))
            return Done(_ok(pub.status_data(self._clock())))

    def _put(self, head: RequestHead) -> BodySink:
        if head.method != "PUT":
            return Fixed(tiktok_error(405, "invalid_params", "chunks are sent with PUT"))
        query = parse_qs(head.query)
        upload_id = (query.get("upload_id") or [""])[0]
        with self._lock:
            pub = self._by_upload.get(upload_id)
            if pub is None or (query.get("upload_token") or [""])[0] != pub.upload_token:
                return Fixed(tiktok_error(404, "invalid_params", "no such upload"))
            if self._clock() >= pub.url_expires_at:
                pub.late_puts += 1
                return Fixed(tiktok_error(self.config.chunk_answers.expired, "invalid_params",
                                          "the upload URL expired"))  # fmt: skip
            checked = check_chunk(head, pub)
            if isinstance(checked, Reply):
                return Fixed(checked)
            index, first, length = checked
            answers = self.config.chunk_answers
            if index < pub.received_chunks:  # sent again: accepted, stored once
                done = pub.received_chunks == pub.total_chunk_count
                return Fixed(Reply(answers.complete if done else answers.partial))
            if pub.busy:
                return Fixed(tiktok_error(409, "invalid_params", "a chunk is being received"))
            return ChunkSink(pub, self.storage, first=first, length=length, answers=answers,
                             clock=self._clock, lock=self._lock)  # fmt: skip


def _ok(data: dict[str, Any]) -> Reply:
    return json_reply(200, {"data": data, "error": {"code": "ok", "message": "", "log_id": "sim"}})


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
