"""X (API v2): chunked media upload, then one post, verified after a lost answer.

::

    from steadypost.platforms.x import X_API, XPlatform

    with Uploader(headers={"Authorization": f"Bearer {user_access_token}"}) as up:
        up.post("clip.mp4", X_API, metadata={"text": "Sunset #beach"}, platform=XPlatform())

What happens, and what the journal keeps (``post.extra["x"]``):

1. The intent, then ``POST /2/media/upload`` ``command=INIT`` (``media_type``,
   ``total_bytes``, ``media_category``): its ``id``, ``media_key`` and
   ``expires_after_secs`` are journaled at once. A media id is not a post, so
   an INIT whose answer was lost is made again.
2. ``APPEND`` segments of ``chunk_size`` (at most 5 MB, ``segment_index``
   0-999) as ``multipart/form-data``; each acknowledged segment is journaled
   (the post's offset). Only a failed segment is sent again, and never within
   ``expiry_margin_s`` of the media's expiry (then a new INIT).
3. ``FINALIZE`` (not within ``expiry_margin_s`` of the expiry either: a run
   resumed a day after a lost FINALIZE answer makes new media, since no post
   used the old one), then ``STATUS`` every ``check_after_secs`` until
   ``succeeded`` (``failed`` with ``InvalidMedia`` fails the post); a media
   still processing after ``ready_wait_s`` makes the post wait.
4. The intent, then ``POST /2/tweets`` with ``{"text", "media": {"media_ids"}}``.
   A lost answer (timeout, 5xx) is never answered by a second post: the post
   is ``unconfirmed``, and the check scans the account's recent posts
   (``GET /2/users/{id}/tweets``, the last ``scan_count``) for one carrying
   this media key. X documents no way to find a post after a lost answer:
   the scan is steadypost's assumption. Found -> confirmed; not found ->
   posted then.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from steadypost.errors import (
    AuthorizationError,
    Outcome,
    PlatformError,
    ProtocolError,
    SteadypostError,
    UploadGoneError,
)
from steadypost.flow import Emit, FileBody, Flow, Request, Response, Sleep, WireMeter, with_retries
from steadypost.flow.events import (
    OffsetAcknowledged,
    PlatformState,
    UploadCreated,
)
from steadypost.models import Post, UploadResult
from steadypost.platforms.base import CheckResult, CheckStatus, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, json_object, status_error
from steadypost.policy import is_ascii_number, parse_retry_after

X_API = "https://api.x.com"
MEDIA_PATH = "/2/media/upload"
TWEETS_PATH = "/2/tweets"
MAX_SEGMENT = 5 * 1000 * 1000  # "media <= 5 MB", read as the smaller MB
MAX_SEGMENTS = 1000
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
DEFAULT_EXPIRY_MARGIN_S = 300.0
DEFAULT_READY_WAIT_S = 600.0
DEFAULT_SCAN_COUNT = 20
_FORM = "application/x-www-form-urlencoded"


def _x_error(req: Request, resp: Response, *, now: float, what: str) -> SteadypostError:
    """An X answer that is not a success: 401/403 auth, 429 until ``x-rate-limit-reset``."""
    text = resp.content[:300].decode("utf-8", "replace")
    if resp.status == 401:
        return AuthorizationError(
            f"X refused the account's access token (401): connect the X account again, then "
            f"post again [{req.method} {req.url.split('?')[0]}]", platform="x",
            code="unauthorized", status=401,
        )  # fmt: skip
    if resp.status == 429:
        reset = (resp.header("x-rate-limit-reset") or "").strip()
        wait = float(reset) - now if is_ascii_number(reset) else None
        wait = wait if wait is not None and wait > 0 else parse_retry_after(
            resp.header("retry-after"), now=now) or 60.0  # fmt: skip
        return PlatformError(f"{what}: X's rate limit (429)", code="rate_limited", status=429,
                             outcome=Outcome.NOT_DELIVERED, retry_after=min(wait, 24 * 3600.0),
                             method=req.method, url=req.url)  # fmt: skip
    error = status_error(req, resp, now=now, what=what)
    if resp.status == 403 and "too long" in text.lower():
        error = PlatformError(f"{what}: X refused it for this account: {text}", code="forbidden",
                              status=403, method=req.method, url=req.url)  # fmt: skip
    return error


def _data(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` object of a v2 answer (``{}`` when it has none)."""
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


class XPlatform:
    """X's v2 media upload and post creation. The post's endpoint is the API base.

    Options (journaled as strings): ``account``, ``user_id`` (empty: asked with
    ``GET /2/users/me`` when a check needs it), ``chunk_size`` (at most 5 MB),
    ``media_category``, ``scan_count``, ``ready_wait_s``, ``expiry_margin_s``.
    """

    name = "x"

    def __init__(
        self, auth: HeaderPolicy | None = None, *, account: str = "", user_id: str = "",
        chunk_size: int = DEFAULT_CHUNK_SIZE, media_category: str = "tweet_video",
        scan_count: int = DEFAULT_SCAN_COUNT, ready_wait_s: float = DEFAULT_READY_WAIT_S,
        expiry_margin_s: float = DEFAULT_EXPIRY_MARGIN_S, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if not 1 <= chunk_size <= MAX_SEGMENT or not 5 <= scan_count <= 100:
            raise ValueError(f"chunk_size must be 1 to {MAX_SEGMENT:,}; scan_count 5 to 100")
        self.auth = auth if auth is not None else HeaderPolicy()
        self.account, self.user_id, self.chunk_size = account, user_id, chunk_size
        self.media_category, self.scan_count = media_category, scan_count
        self.ready_wait_s, self.expiry_margin_s = ready_wait_s, expiry_margin_s
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], auth: HeaderPolicy, *, clock: Callable[[], float]
    ) -> XPlatform:
        return cls(
            auth, account=config.get("account", ""), user_id=config.get("user_id", ""),
            chunk_size=int(config.get("chunk_size", DEFAULT_CHUNK_SIZE)),
            media_category=config.get("media_category", "tweet_video"),
            scan_count=int(config.get("scan_count", DEFAULT_SCAN_COUNT)),
            ready_wait_s=float(config.get("ready_wait_s", DEFAULT_READY_WAIT_S)),
            expiry_margin_s=float(config.get("expiry_margin_s", DEFAULT_EXPIRY_MARGIN_S)),
            clock=clock,
        )  # fmt: skip

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({
            "account": self.account, "user_id": self.user_id, "chunk_size": str(self.chunk_size),
            "media_category": self.media_category, "scan_count": str(self.scan_count),
            "ready_wait_s": repr(self.ready_wait_s), "expiry_margin_s": repr(self.expiry_margin_s),
        })  # fmt: skip

    def begin(self, job: UploadJob) -> PlatformUpload:
        return XUpload(self, job)

    def call(self, method: str, url: str, *, what: str, form: Mapping[str, str] | None = None,
             body: Any = None) -> Flow[dict[str, Any]]:  # fmt: skip
        """One JSON call; the answer's object, or the mapped error."""
        extra: tuple[tuple[str, str], ...] = (("Accept", "application/json"),)
        content: bytes | None = None
        if form is not None:
            extra += (("Content-Type", _FORM),)
            content = urlencode(dict(form)).encode()
        elif body is not None:
            extra += (("Content-Type", "application/json"),)
            content = json.dumps(body).encode()
        req = Request(method, url, self.auth.for_url(url, *extra), content)
        resp: Response = yield req
        if not 200 <= resp.status < 300:
            raise _x_error(req, resp, now=self.clock(), what=what)
        return json_object(req, resp) if resp.content.strip() else {}

    # -- the post --

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        return self._create(post)

    def _create(self, post: Post) -> Flow[CheckResult]:
        state = dict(post.extra.get("x") or {})
        if not state.get("ready"):
            raise ProtocolError("the journal shows no finished X media to post")
        text = post.metadata.get("text") or post.metadata.get("caption") or \
            post.metadata.get("title") or ""  # fmt: skip
        yield Emit(PlatformState({"x": {**state, "create_sent_at": self.clock()}}))  # intent
        url = post.endpoint.rstrip("/") + TWEETS_PATH
        data = yield from self.call("POST", url, what="creating the post failed", body={
            "text": text, "media": {"media_ids": [str(state["media_id"])]}})  # fmt: skip
        tweet = _data(data)
        detail = MappingProxyType({"post_id": str(tweet.get("id") or "")})
        return CheckResult(CheckStatus.PROCESSED, "X published the post", detail=detail)

    def check(self, post: Post) -> Flow[CheckResult]:
        """Scan the account's recent posts for one carrying this media (an assumption)."""
        state = post.extra.get("x") or {}
        key = state.get("media_key")
        if not key or not state.get("ready"):
            return CheckResult(CheckStatus.NOT_PROCESSED, "the media never finished on X")
        base = post.endpoint.rstrip("/")
        user = self.user_id or str(state.get("user_id") or "")
        if not user:
            me = yield from self.call("GET", f"{base}/2/users/me", what="asking who posts")
            user = str((me.get("data") or {}).get("id") or "")
            if not user:
                raise ProtocolError(f"GET {base}/2/users/me: the answer has no user id")
        query = urlencode({"max_results": str(self.scan_count), "expansions":
                           "attachments.media_keys", "tweet.fields": "attachments,created_at"})
        data = yield from self.call("GET", f"{base}/2/users/{user}/tweets?{query}",
                                    what="reading the account's recent posts")  # fmt: skip
        for tweet in data.get("data") or []:
            keys = ((tweet.get("attachments") or {}).get("media_keys") or []) \
                if isinstance(tweet, dict) else []  # fmt: skip
            if key in keys:
                detail = MappingProxyType({"post_id": str(tweet.get("id")), "media_key": key})
                return CheckResult(CheckStatus.PROCESSED, "found among the recent posts",
                                   detail=detail)  # fmt: skip
        why = f"no post with this media among the account's last {self.scan_count}"
        return CheckResult(CheckStatus.NOT_PROCESSED, why)

    def cancel(self, post: Post) -> Flow[None] | None:
        """Nothing is asked of X: unused media expires by itself."""
        return None


class XUpload:
    """One run of an X post's media upload (INIT, APPEND, FINALIZE, STATUS)."""

    def __init__(self, platform: XPlatform, job: UploadJob) -> None:
        self.platform, self.post, self.file, self.retry = platform, job.post, job.file, job.retry
        self.base = job.post.endpoint.rstrip("/")
        self.chunk = min(job.chunk_size or platform.chunk_size, MAX_SEGMENT)
        self.chunk = max(self.chunk, -(-self.file.size // MAX_SEGMENTS))
        self.state: dict[str, Any] = dict(job.post.extra.get("x") or {})
        journaled = bool(job.post.upload_url) and job.post.upload_url == self.state.get("url")
        if not journaled or int(self.state.get("chunk", 0)) != self.chunk:
            self.state = {}
        self.acknowledged = job.post.offset if self.state else 0
        self.wire = WireMeter.for_file(self.retry.policy, self.file.size, self.chunk,
                                       spent=job.post.bytes_sent)  # fmt: skip

    def run(self) -> Flow[UploadResult]:
        for _ in range(3):
            try:
                if not self.state:
                    yield from self._init()
                while self.acknowledged < self.file.size:
                    yield from with_retries(self._append, self.retry)
                if not self.state.get("finalized"):
                    if self._expiring():  # e.g. resumed a day after a lost FINALIZE answer
                        raise UploadGoneError("the X media expires before it is finalized")
                    info = yield from with_retries(lambda: self._command("FINALIZE"), self.retry)
                    self.state["finalized"] = True
                    yield Emit(PlatformState({"x": dict(self.state)}))
                    yield from self._wait_ready(info)
                elif not self.state.get("ready"):
                    yield from self._wait_ready(None)
                size = self.file.size
                return UploadResult(str(self.state["url"]), size, size)
            except UploadGoneError:
                self.state, self.acknowledged = {}, 0  # the media expired: a new one
        raise UploadGoneError("X's media keeps expiring before it is finished")

    def _init(self) -> Flow[None]:
        self.state = {"init_started_at": self.retry.clock()}
        yield Emit(PlatformState({"x": dict(self.state)}))  # the intent, before INIT
        form = {"command": "INIT", "media_type": self.file.filetype if
                self.file.filetype.startswith("video/") else "video/mp4",
                "total_bytes": str(self.file.size),
                "media_category": self.platform.media_category}  # fmt: skip
        data = yield from with_retries(lambda: self.platform.call(
            "POST", self.base + MEDIA_PATH, form=form, what="starting the X upload failed"),
            self.retry)  # fmt: skip
        media = _data(data)
        media_id, key = str(media.get("id") or ""), str(media.get("media_key") or "")
        life = media.get("expires_after_secs")
        if not media_id.isdigit() or not key:
            raise ProtocolError(f"POST {self.base}{MEDIA_PATH}: INIT answered no id/media_key")
        now = self.retry.clock()
        expires = now + float(life) if isinstance(life, int | float) else None
        url = f"{self.base}{MEDIA_PATH}?media_id={media_id}"
        self.state.update(media_id=media_id, media_key=key, url=url, chunk=self.chunk,
                          expires_at=expires)  # fmt: skip
        self.acknowledged = 0
        yield Emit(UploadCreated(url, expires, 0, extra={"x": dict(self.state)}))

    def _expiring(self) -> bool:
        """Whether the media expires within ``expiry_margin_s`` (then it is made again)."""
        expires = self.state.get("expires_at")
        return expires is not None and self.retry.clock() + self.platform.expiry_margin_s >= expires

    def _append(self) -> Flow[None]:
        expires = self.state.get("expires_at")
        if self._expiring():
            raise UploadGoneError("the X media expires before its upload can finish")
        index = self.acknowledged // self.chunk
        first = index * self.chunk
        length = min(self.chunk, self.file.size - first)
        boundary = f"steadypost-{secrets.token_hex(12)}"
        fields = {"command": "APPEND", "media_id": str(self.state["media_id"]),
                  "segment_index": str(index)}  # fmt: skip
        head = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                       f"{v}\r\n" for k, v in fields.items())  # fmt: skip
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; "
                 f"filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n")
        body = FileBody(self.file, first, length, prefix=head.encode(),
                        suffix=f"\r\n--{boundary}--\r\n".encode())
        url = self.base + MEDIA_PATH
        what = f"sending segment {index} of {self.file.path}"
        yield from self.wire.sending(str(self.state["url"]), body, what=what)
        headers = self.platform.auth.for_url(
            url, ("Content-Type", f"multipart/form-data; boundary={boundary}"))
        req = Request("POST", url, headers, body)
        resp = yield from self.wire.exchange(req)
        if not 200 <= resp.status < 300:
            if resp.status in (400, 404) and expires is not None and self.retry.clock() >= expires:
                raise UploadGoneError("the X media expired")
            raise _x_error(req, resp, now=self.retry.clock(), what=f"segment {index} failed")
        self.acknowledged = first + length
        yield Emit(OffsetAcknowledged(str(self.state["url"]), self.acknowledged, self.file.size))

    def _command(self, command: str) -> Flow[dict[str, Any]]:
        media_id = str(self.state["media_id"])
        if command == "STATUS":
            query = urlencode({"command": "STATUS", "media_id": media_id})
            url = f"{self.base}{MEDIA_PATH}?{query}"
            data = yield from self.platform.call("GET", url, what="asking the media's status")
        else:
            data = yield from self.platform.call(
                "POST", self.base + MEDIA_PATH, form={"command": command, "media_id": media_id},
                what=f"{command} failed")  # fmt: skip
        media = _data(data)
        info = media.get("processing_info")
        return info if isinstance(info, dict) else {}

    def _wait_ready(self, info: dict[str, Any] | None) -> Flow[None]:
        """``STATUS`` every ``check_after_secs`` until ``succeeded`` (``None``: ask first)."""
        waited = 0.0
        while True:
            if info is None:
                info = yield from with_retries(lambda: self._command("STATUS"), self.retry)
            state = str(info.get("state") or "")
            if not info or state == "succeeded":  # no processing_info at all: ready
                break
            if state == "failed":
                raw = info.get("error")
                error: dict[str, Any] = raw if isinstance(raw, dict) else {}
                name = str(error.get("name") or "InvalidMedia")
                raise PlatformError(
                    f"X could not process the video: {name}: {error.get('message', '')}",
                    code=name, status=400, outcome=Outcome.REJECTED,
                )  # fmt: skip
            after = info.get("check_after_secs")
            pause = float(after) if isinstance(after, int | float) and after > 0 else 5.0
            if waited + pause > self.platform.ready_wait_s:
                raise PlatformError(
                    "X is still processing the video: the post goes on later",
                    code="processing", status=503, outcome=Outcome.NOT_DELIVERED,
                    retry_after=pause,
                )  # fmt: skip
            yield Sleep(pause, "X is processing the video")
            waited += pause
            info = None
        self.state["ready"] = True
        yield Emit(PlatformState({"x": dict(self.state)}))
