"""TikTok's Content Posting API calls as flows: its JSON envelope, error codes and statuses.

Every answer is ``{"data": {...}, "error": {"code", "message", "log_id"}}``;
``error.code`` is ``"ok"`` on success. Errors are mapped to what steadypost
does about them:

==================================  ==============================================
TikTok says                          steadypost
==================================  ==============================================
``rate_limit_exceeded`` (429)        waits (``Retry-After`` or a minute), retries
``spam_risk_too_many_pending_share`` the post waits (an hour by default) for a
                                     pending share to finish; it does not fail
``access_token_invalid``,            :class:`~steadypost.errors.AuthorizationError`:
``scope_not_authorized``,            failed, "reconnect your TikTok account";
``scope_permission_missed``, 401     never retried
5xx / "try again later"              retried (init, status) or verified (last chunk)
any other code                       failed, with TikTok's code and message
==================================  ==============================================

Client-side rate limits per access token (TikTok's documented numbers) are
taken with the :class:`~steadypost.flow.Acquire` effect before each call, keyed
by a hash of the token, so every process sharing the journal counts together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from steadypost.errors import (
    AuthorizationError,
    Outcome,
    PlatformError,
    ProtocolError,
    SteadypostError,
)
from steadypost.flow import Acquire, Flow, Request, Response, Sleep
from steadypost.models import Post
from steadypost.platforms.base import CheckResult, CheckStatus
from steadypost.platforms.http import HeaderPolicy, json_object, resolve_url, status_error
from steadypost.policy import is_ascii_number, parse_retry_after

API_BASE = "https://open.tiktokapis.com"
CREATOR_INFO_PATH = "/v2/post/publish/creator_info/query/"
DIRECT_INIT_PATH = "/v2/post/publish/video/init/"
INBOX_INIT_PATH = "/v2/post/publish/inbox/video/init/"
STATUS_PATH = "/v2/post/publish/status/fetch/"
JSON_TYPE = "application/json; charset=UTF-8"

#: TikTok's documented limits per user access token, per minute.
INIT_PER_MINUTE = 6
STATUS_PER_MINUTE = 30
CREATOR_INFO_PER_MINUTE = 20
RATE_WINDOW_S = 60.0
#: A wait for a rate-limit slot longer than this leaves the post waiting in the journal.
MAX_INLINE_RATE_WAIT_S = 120.0
#: How long a 429 without ``Retry-After`` is waited out.
DEFAULT_RATE_LIMITED_WAIT_S = 60.0

AUTH_CODES = frozenset({"access_token_invalid", "scope_not_authorized", "scope_permission_missed"})
#: Codes that mean "not now": the post waits instead of failing.
WAIT_CODES = frozenset({"spam_risk_too_many_pending_share"})
#: ``fail_reason`` values after which posting again can help; every other reason
#: (file_format_check_failed, duration_check_failed, picture_size_check_failed,
#: frame_rate_check_failed, spam_risk_*, unknown ones) is final.
RETRYABLE_FAIL_REASONS = frozenset({"internal", "video_pull_failed"})
DONE_STATUSES = {
    "PUBLISH_COMPLETE": "TikTok published the post",
    "SEND_TO_USER_INBOX": "the video is in the creator's TikTok inbox; they finish the post there",
}
PROCESSING_STATUSES = frozenset({"PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"})


class TikTokRuleError(SteadypostError):
    """The post breaks a rule TikTok reported for this account (e.g. its privacy levels)."""

    outcome = Outcome.REJECTED


def token_key(auth: HeaderPolicy) -> str | None:
    """``tiktok-rate:<hash>`` for the configured ``Authorization`` value; never the token."""
    value = next((v for k, v in auth.headers.items() if k.lower() == "authorization"), "")
    if not value.strip():
        return None
    return "tiktok-rate:" + hashlib.sha256(value.strip().encode()).hexdigest()[:16]


def _error_for(
    req: Request, resp: Response, *, code: str, message: str, log_id: str | None,
    now: float, what: str, wait_s: float,
) -> SteadypostError:  # fmt: skip
    detail = f"{code}: {message}" if message else code or "no error code"
    where = f"{what}: {req.method} {req.url} answered {resp.status} ({detail})"
    retry_after = parse_retry_after(resp.header("retry-after"), now=now)
    if code in AUTH_CODES or resp.status == 401:
        return AuthorizationError(
            f"TikTok refused the account's access ({detail}): reconnect your TikTok account "
            f"(sign in again and approve posting), then post again [{where}]",
            platform="tiktok", code=code or "unauthorized", status=resp.status,
        )  # fmt: skip
    common: dict[str, Any] = {"method": req.method, "url": req.url, "request_id": log_id}
    if code == "rate_limit_exceeded" or resp.status == 429:
        return PlatformError(
            f"{where}: TikTok's rate limit", code=code or "rate_limit_exceeded", status=429,
            outcome=Outcome.NOT_DELIVERED, retry_after=retry_after or DEFAULT_RATE_LIMITED_WAIT_S,
            **common,
        )  # fmt: skip
    if code in WAIT_CODES:
        return PlatformError(
            f"{where}: the account has too many shares waiting to finish; the post waits "
            f"{wait_s / 60:.0f} min for one of them", code=code, status=resp.status,
            outcome=Outcome.NOT_DELIVERED, retry_after=wait_s, **common,
        )  # fmt: skip
    outcome = status_error(req, resp, now=now, what=what).outcome
    return PlatformError(
        where, code=code, status=resp.status, outcome=outcome, retry_after=retry_after, **common
    )


def read_data(
    req: Request, resp: Response, *, now: float, what: str, wait_s: float
) -> dict[str, Any]:
    """The ``data`` object of a successful answer; otherwise the mapped error is raised."""
    try:
        body = json_object(req, resp)
    except ProtocolError:
        if resp.status >= 300:  # a proxy's HTML error page, say
            raise status_error(req, resp, now=now, what=what) from None
        raise
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    code = str(error.get("code") or "")
    if 200 <= resp.status < 300 and code in ("", "ok"):
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    log_id = str(error["log_id"]) if error.get("log_id") else None
    raise _error_for(
        req, resp, code=code, message=str(error.get("message") or ""), log_id=log_id,
        now=now, what=what, wait_s=wait_s,
    )  # fmt: skip


def status_result(
    data: Mapping[str, Any], *, video_size: int, all_acknowledged: bool, url_alive: bool
) -> CheckResult:
    """What ``status/fetch`` says about a post.

    ``PROCESSING_UPLOAD`` is "not processed" only when the journal does not
    show every chunk acknowledged and TikTok holds fewer bytes than the file,
    or says nothing of its bytes and the upload URL died first: then the post is
    sent again (resumed, or under a new init). Otherwise it is still processing
    (a post whose last answer was lost but whose bytes TikTok all holds is never
    sent again, however long TikTok processes it).
    """
    status = str(data.get("status", ""))
    keys = ("status", "fail_reason", "uploaded_bytes", "publicaly_available_post_id")
    detail = MappingProxyType({k: data[k] for k in keys if k in data})
    if status in DONE_STATUSES:
        return CheckResult(CheckStatus.PROCESSED, DONE_STATUSES[status], detail=detail)
    if status == "FAILED":
        reason = str(data.get("fail_reason") or "no reason given")
        retryable = reason in RETRYABLE_FAIL_REASONS
        return CheckResult(CheckStatus.FAILED, reason, retryable=retryable, detail=detail)
    if status not in PROCESSING_STATUSES:
        raise ProtocolError(f"TikTok answered an unknown post status {status!r}")
    raw = data.get("uploaded_bytes")
    uploaded = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if status == "PROCESSING_UPLOAD" and not all_acknowledged:
        if uploaded is not None and uploaded < video_size:
            why = f"TikTok holds {uploaded:,} of {video_size:,} bytes"
            return CheckResult(CheckStatus.NOT_PROCESSED, why, detail=detail)
        if not url_alive and uploaded is None:  # every byte held: the URL's age is moot
            why = "the upload URL expired before every chunk was acknowledged"
            return CheckResult(CheckStatus.NOT_PROCESSED, why, detail=detail)
    return CheckResult(CheckStatus.PROCESSING, status.lower(), detail=detail)


@dataclass(frozen=True)
class Creator:
    """What ``creator_info/query`` says about the account (the part steadypost uses)."""

    privacy_level_options: tuple[str, ...]
    max_video_post_duration_sec: int | None


class TikTokApi:
    """The JSON calls on ``base`` (the post's endpoint), each behind its rate limit."""

    def __init__(
        self, base: str, auth: HeaderPolicy, *, clock: Callable[[], float], wait_s: float
    ) -> None:
        self.base = base.rstrip("/")
        self.auth = auth
        self.clock = clock
        self.wait_s = wait_s
        self.host = urlsplit(self.base).hostname or self.base

    def _rate_key(self) -> str:
        key = token_key(self.auth)
        if key is None:
            raise AuthorizationError(
                "no TikTok access token: pass Uploader(headers={'Authorization': "
                "'Bearer <token>'}) or a token_provider, then post again",
                platform="tiktok", code="no_token",
            )  # fmt: skip
        return key

    def acquire(self, bucket: str, limit: int) -> Flow[None]:
        """Wait (a :class:`Sleep`) until ``bucket`` has a slot for this token."""
        key = self._rate_key()
        while True:
            wait = yield Acquire(self.host, key, bucket, limit, RATE_WINDOW_S, self.clock())
            if wait <= 0:
                return
            reason = f"TikTok allows {limit} {bucket} requests per minute per account"
            if wait > MAX_INLINE_RATE_WAIT_S:
                raise PlatformError(
                    f"{reason}: the next slot is {wait:.0f} s away", code="client_rate_limit",
                    status=429, outcome=Outcome.NOT_DELIVERED, retry_after=wait,
                )  # fmt: skip
            yield Sleep(wait, reason)

    def call(
        self, path: str, body: Mapping[str, Any], *, bucket: str, limit: int, what: str
    ) -> Flow[tuple[dict[str, Any], float]]:
        """POST ``body`` to ``path``; returns the answer's ``data`` and when it was sent."""
        yield from self.acquire(bucket, limit)
        url = self.base + path
        headers = self.auth.for_url(
            url, ("Content-Type", JSON_TYPE), ("Accept", "application/json")
        )
        req = Request("POST", url, headers, json.dumps(dict(body)).encode())
        sent_at = self.clock()
        resp: Response = yield req
        data = read_data(req, resp, now=self.clock(), what=what, wait_s=self.wait_s)
        return data, sent_at

    def creator_info(self) -> Flow[Creator]:
        data, _ = yield from self.call(
            CREATOR_INFO_PATH, {}, bucket="creator_info", limit=CREATOR_INFO_PER_MINUTE,
            what="asking TikTok about the account failed",
        )  # fmt: skip
        raw = data.get("privacy_level_options")
        options = tuple(str(o) for o in raw) if isinstance(raw, list) else ()
        duration = data.get("max_video_post_duration_sec")
        return Creator(options, duration if isinstance(duration, int) else None)

    def init(self, path: str, body: Mapping[str, Any]) -> Flow[tuple[str, str, float]]:
        """``publish_id``, ``upload_url``, and when the request left (the URL's earliest issue)."""
        data, sent_at = yield from self.call(
            path, body, bucket="init", limit=INIT_PER_MINUTE,
            what="starting the TikTok upload failed",
        )  # fmt: skip
        publish_id, upload_url = data.get("publish_id"), data.get("upload_url")
        if not isinstance(publish_id, str) or not publish_id or len(publish_id) > 64:
            raise ProtocolError(f"TikTok's init answer has no usable publish_id: {publish_id!r}")
        if not isinstance(upload_url, str) or not upload_url.startswith(("https://", "http://")):
            raise ProtocolError("TikTok's init answer has no upload_url")
        upload_url = resolve_url(self.base, upload_url, what="TikTok's upload_url")
        return publish_id, upload_url, sent_at

    def status(self, publish_id: str) -> Flow[dict[str, Any]]:
        data, _ = yield from self.call(
            STATUS_PATH, {"publish_id": publish_id}, bucket="status", limit=STATUS_PER_MINUTE,
            what="asking TikTok for the post's status failed",
        )  # fmt: skip
        return data


def post_info(post: Post, privacy_level: str) -> dict[str, Any]:
    """Direct Post's ``post_info`` from the post's metadata (``title`` or ``caption``, ...).

    Metadata keys used: ``title`` (or ``caption``), ``privacy_level``
    (overrides the adapter's), ``disable_comment`` / ``disable_duet`` /
    ``disable_stitch`` / ``is_aigc`` (``"true"``/``"false"``) and
    ``video_cover_timestamp_ms``.
    """
    meta = post.metadata
    info: dict[str, Any] = {"privacy_level": meta.get("privacy_level") or privacy_level}
    title = meta.get("title") or meta.get("caption")
    if title:
        info["title"] = title
    for key in ("disable_comment", "disable_duet", "disable_stitch", "is_aigc"):
        if key in meta:
            info[key] = meta[key].strip().lower() in ("1", "true", "yes")
    cover = meta.get("video_cover_timestamp_ms", "").strip()
    if is_ascii_number(cover):
        info["video_cover_timestamp_ms"] = int(cover)
    return info
