"""YouTube Data API v3 pieces as flows: tokens, Google's errors, the channel's quota, videos.list.

Errors arrive as ``{"error": {"code", "message", "errors": [{"reason", ...}]}}``:

==================================  ==============================================
YouTube says                         steadypost
==================================  ==============================================
403 ``quotaExceeded``                the channel's uploads wait until the daily quota
                                     resets (midnight Pacific), kept in the journal
400 ``uploadLimitExceeded``          the channel's uploads wait 24 hours (journal)
401                                  a refreshable token is refreshed and the request
                                     made again (same session); otherwise
                                     :class:`~steadypost.errors.AuthorizationError`
500, 502, 503, 504, lost answers     retried with backoff (after asking the offset)
any other 4xx                        failed, with YouTube's reason
==================================  ==============================================

A quota hit is a *hold* on the channel's bucket in the journal's host state
(:class:`~steadypost.flow.Acquire` with ``hold_until``): every process
sharing the journal waits for it without a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit

from steadypost.errors import (
    AuthorizationError,
    Outcome,
    PlatformError,
    ProtocolError,
    SteadypostError,
)
from steadypost.flow import Acquire, Flow, Request, Response
from steadypost.origins import origin_of
from steadypost.platforms.base import CheckResult, CheckStatus
from steadypost.platforms.http import HeaderPolicy, json_object, status_error
from steadypost.policy import header_int

API_BASE = "https://www.googleapis.com"
UPLOAD_PATH = "/upload/youtube/v3/videos"
VIDEOS_PATH = "/youtube/v3/videos"
#: Chunks are multiples of this (the resumable upload guide).
GRANULE = 256 * 1024
QUOTA_BUCKET = "quotaExceeded"
UPLOAD_LIMIT_BUCKET = "uploadLimitExceeded"
#: "If you get uploadLimitExceeded, try again in 24 hours."
DEFAULT_UPLOAD_LIMIT_WAIT_S = 24 * 3600.0
_RANGE = re.compile(r"^bytes=0-(\S+)$")
_PACIFIC_STANDARD = timezone(timedelta(hours=-8))


class TokenRefusedError(AuthorizationError):
    """YouTube answered 401 to a token that can be refreshed: refresh, then the same request."""


def next_pacific_midnight(now: float) -> float:
    """When YouTube's daily quota resets after ``now`` (midnight Pacific Time).

    Uses the ``America/Los_Angeles`` zone when the system has it; otherwise
    midnight PST (UTC-8), which in summer is an hour after the real reset:
    late, never early.
    """
    try:
        from zoneinfo import ZoneInfo

        zone: Any = ZoneInfo("America/Los_Angeles")
    except Exception:
        zone = _PACIFIC_STANDARD
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)
    return midnight.timestamp()


def google_reason(resp: Response) -> tuple[str, str]:
    """``(reason, message)`` of a Google error body (``("", "")`` when it has none)."""
    try:
        body = json.loads(resp.content.decode("utf-8", "replace"))
    except ValueError:
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    return str(first.get("reason") or ""), str(error.get("message") or "")[:300]


def held_range(resp: Response, *, where: str) -> int:
    """How many bytes a ``308`` says YouTube holds: ``Range: bytes=0-N`` is N+1, none is 0."""
    raw = resp.header("range")
    if raw is None or not raw.strip():
        return 0
    match = _RANGE.match(raw.strip())
    if match is None:
        raise ProtocolError(f"{where}: Range is not 'bytes=0-N': {raw.strip()[:60]!r}")
    return header_int(match.group(1), name="Range", where=where) + 1


class YouTubeApi:
    """Tokens, errors and quota holds for one channel on ``base`` (the post's endpoint)."""

    def __init__(self, base: str, auth: HeaderPolicy, *, account: str,
                 clock: Callable[[], float], upload_limit_wait_s: float) -> None:  # fmt: skip
        self.base = base.rstrip("/")
        self.auth = auth
        self.clock = clock
        self.account = account
        self.upload_limit_wait_s = upload_limit_wait_s
        self.host = urlsplit(self.base).hostname or self.base
        self._token: str | None = None

    # -- tokens --

    def headers(self, url: str, *extra: tuple[str, str]) -> Flow[tuple[tuple[str, str], ...]]:
        """The request's headers, with a fresh OAuth token when one can be refreshed."""
        oauth = self.auth.oauth
        headers = self.auth.for_url(url, *extra)
        if oauth is None or origin_of(url) not in self.auth.trusted:
            return headers
        self._token = yield from oauth.token(self.clock)
        kept = tuple((k, v) for k, v in headers if k.lower() != "authorization")
        return (*kept, ("Authorization", f"Bearer {self._token}"))

    def refused(self, resp: Response) -> SteadypostError:
        """What a 401 means: refresh and retry (a refreshable token), or reconnect."""
        oauth = self.auth.oauth
        if oauth is not None and self._token is not None:
            oauth.invalidate(self._token)
            return TokenRefusedError(
                "YouTube refused the access token (401): refreshing it", platform="youtube",
                code="token_refused", status=401, outcome=Outcome.NOT_DELIVERED,
            )  # fmt: skip
        reason, message = google_reason(resp)
        return AuthorizationError(
            f"YouTube refused the account's access ({reason or resp.status}: {message}): "
            "connect the YouTube channel again (sign in and allow uploads), then post again",
            platform="youtube", code=reason or "unauthorized", status=resp.status,
        )  # fmt: skip

    # -- quota holds, per channel, in the journal --

    def _key(self) -> str:
        return f"youtube-quota:{self.account or 'default'}"

    def gate(self) -> Flow[None]:
        """Refuse (without a request) while the channel waits for a quota to reset."""
        for bucket in (QUOTA_BUCKET, UPLOAD_LIMIT_BUCKET):
            wait = yield Acquire(self.host, self._key(), bucket, None, 86400.0, self.clock())
            if wait > 0:
                raise self._parked(bucket, wait)

    def _parked(self, bucket: str, wait: float) -> PlatformError:
        what = ("the YouTube API quota is used up until it resets at midnight Pacific time"
                if bucket == QUOTA_BUCKET else
                "the channel reached YouTube's limit of uploads per 24 hours")  # fmt: skip
        status = 403 if bucket == QUOTA_BUCKET else 400
        return PlatformError(
            f"{what}: the post waits {wait / 3600:.1f} h", code=bucket, status=status,
            outcome=Outcome.NOT_DELIVERED, retry_after=wait,
        )  # fmt: skip

    def fail(
        self, req: Request, resp: Response, *, what: str, read: bool = False
    ) -> Flow[SteadypostError]:
        """The error for an unexpected answer; a quota answer first holds the channel.

        ``read``: a question that changed nothing (a check, a session probe):
        the error is ``NOT_DELIVERED`` (see :func:`steadypost.policy.outcome_for_status`).
        """
        if resp.status == 401:
            return self.refused(resp)
        reason, message = google_reason(resp)
        now = self.clock()
        until = None
        if resp.status == 403 and reason == QUOTA_BUCKET:
            until = next_pacific_midnight(now)
        elif resp.status == 400 and reason == UPLOAD_LIMIT_BUCKET:
            until = now + self.upload_limit_wait_s
        if until is not None:
            wait = yield Acquire(self.host, self._key(), reason, None, 86400.0, now,
                                 hold_until=until)  # fmt: skip
            return self._parked(reason, max(wait, until - now))
        error = status_error(req, resp, now=now, what=what, read=read)
        if reason:
            return PlatformError(
                f"{error} ({reason}: {message})", code=reason, status=resp.status,
                method=req.method, url=req.url, retry_after=error.retry_after,
                outcome=error.outcome,
            )  # fmt: skip
        return error

    # -- verification --

    def video_status(self, video_id: str) -> Flow[CheckResult]:
        """``videos.list`` (1 unit) for ``status`` and ``processingDetails``."""
        query = urlencode({"part": "status,processingDetails", "id": video_id})
        url = f"{self.base}{VIDEOS_PATH}?{query}"
        for _ in range(2):  # a refreshed token gets one more try
            headers = yield from self.headers(url, ("Accept", "application/json"))
            req = Request("GET", url, headers)
            resp: Response = yield req
            if resp.status == 200:
                return video_result(video_id, json_object(req, resp))
            error = yield from self.fail(req, resp, what="asking YouTube about the video failed",
                                         read=True)  # fmt: skip
            if not isinstance(error, TokenRefusedError):
                break
        raise error


def video_result(video_id: str, data: Mapping[str, Any]) -> CheckResult:
    """What ``videos.list`` says about ``video_id`` (see the platform's docstring)."""
    items = data.get("items")
    video = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None
    if video is None:
        return CheckResult(CheckStatus.FAILED, f"video {video_id} is gone from YouTube (deleted?)")
    raw_status = video.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    processing = video.get("processingDetails")
    processing = processing if isinstance(processing, dict) else {}
    upload = str(status.get("uploadStatus") or "")
    phase = str(processing.get("processingStatus") or "")
    detail: dict[str, Any] = {"video_id": video_id, "upload_status": upload}
    for key, value in (("processing_status", phase),
                       ("failure_reason", status.get("failureReason")),
                       ("rejection_reason", status.get("rejectionReason"))):  # fmt: skip
        if value:
            detail[key] = str(value)
    frozen = MappingProxyType(detail)
    if upload == "processed":
        return CheckResult(CheckStatus.PROCESSED, "YouTube processed the video", detail=frozen)
    if upload == "rejected":
        reason = str(status.get("rejectionReason") or "no reason given")
        if reason == "duplicate":
            why = ("confirmed elsewhere: YouTube rejected it as a duplicate of a video already "
                   "on the channel (it is never posted again)")  # fmt: skip
            return CheckResult(CheckStatus.PROCESSED, why,
                               detail=MappingProxyType({**detail, "confirmed_elsewhere": True}))
        return CheckResult(CheckStatus.FAILED, f"rejected: {reason}", detail=frozen)
    if upload == "failed":
        reason = str(status.get("failureReason") or "no reason given")
        retryable = reason == "uploadAborted"  # the bytes never all arrived: posting again helps
        return CheckResult(CheckStatus.FAILED, f"failed: {reason}", retryable=retryable,
                           detail=frozen)  # fmt: skip
    if upload == "deleted":
        return CheckResult(CheckStatus.FAILED, "the video was deleted on YouTube", detail=frozen)
    if phase in ("failed", "terminated"):
        why = str(processing.get("processingFailureReason") or phase)
        return CheckResult(CheckStatus.FAILED, f"processing {phase}: {why}", detail=frozen)
    return CheckResult(CheckStatus.PROCESSING, f"uploaded, processing ({phase or 'pending'})",
                       detail=frozen)  # fmt: skip
