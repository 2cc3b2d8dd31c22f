"""YouTube (Data API v3 resumable upload): one video per post, on one channel.

::

    from steadypost.platforms.youtube import YOUTUBE_API, YouTubePlatform

    with Uploader(token_provider=lambda req: google_oauth) as up:   # or headers=
        up.post("clip.mp4", YOUTUBE_API, metadata={"title": "Sunset"},
                platform=YouTubePlatform(account="travel-channel"))

What happens, and what the journal keeps (``post.extra["youtube"]``):

1. Unless the channel waits for its quota (see :mod:`.youtube_api`), the
   intent is journaled, then ``POST /upload/youtube/v3/videos?uploadType=
   resumable&part=snippet,status`` with the ``video`` resource (title,
   description, tags, privacy). Its session URI (``Location``) is journaled
   before the first byte. Nothing is made until bytes arrive, so an
   initiation whose answer was lost is simply made again.
2. Chunks go by ``PUT {session}`` with ``Content-Range: bytes FIRST-LAST/TOTAL``,
   in multiples of 256 KiB. ``308 Resume Incomplete`` with ``Range: bytes=0-N``
   says YouTube holds N+1 bytes (no ``Range``: none); ``200``/``201`` with the
   ``video`` resource ends the upload, and its id is journaled.
3. After any failure (a lost answer, a 5xx), a wait, then the offset is asked
   with an empty ``PUT`` and ``Content-Range: bytes */TOTAL``: ``308`` gives
   the offset, and an upload that already ended answers its final answer
   again, so the last chunk is never sent twice and one session is one video.
   A new run resumes the journaled session the same way.
4. ``404``/``410`` on the session: it lapsed; a new one is started from byte
   0, but only if the old one never got the last byte (two finished sessions
   would be two videos). A session that lapsed after its last byte left
   without an answer is not started again: the post fails with that reason.
5. ``videos.list`` settles the post: ``processed`` -> confirmed; ``uploaded``
   (processing) -> checked again later; ``rejected`` as ``duplicate`` ->
   confirmed elsewhere (the channel already has it; never posted again);
   other rejections, ``failed``, ``deleted`` -> failed with YouTube's reason.

Tokens come from the uploader's ``headers`` or its ``token_provider`` (an
:class:`~steadypost.platforms.oauth.OAuthRefresh` is refreshed in the flow,
also after a 401 mid-upload, keeping the session); never journaled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from steadypost.errors import (
    CertificateError,
    ConnectFailedError,
    HostUnavailableError,
    Outcome,
    ProtocolError,
    StalledError,
    SteadypostError,
    TransportError,
    UploadGoneError,
)
from steadypost.flow import (
    Emit,
    FileBody,
    Flow,
    NoProgress,
    Request,
    Response,
    WireMeter,
    wait_before_retry,
    with_retries,
)
from steadypost.flow.events import (
    OffsetAcknowledged,
    OffsetReported,
    PlatformState,
    UploadCreated,
    UploadRestarted,
)
from steadypost.models import Post, UploadResult
from steadypost.platforms.base import CheckResult, CheckStatus, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, json_object, resolve_url
from steadypost.platforms.youtube.api import (
    API_BASE,
    DEFAULT_UPLOAD_LIMIT_WAIT_S,
    GRANULE,
    UPLOAD_PATH,
    TokenRefusedError,
    YouTubeApi,
    held_range,
)
from steadypost.policy import is_transient

YOUTUBE_API = API_BASE
#: Unverified API projects may only upload private videos.
DEFAULT_PRIVACY = "private"
DEFAULT_CATEGORY = "22"  # People & Blogs
DEFAULT_CHUNK_SIZE = 64 * GRANULE  # 16 MiB
DEFAULT_MAX_RESTARTS = 3
_JSON = "application/json; charset=UTF-8"


class YouTubePlatform:
    """YouTube's resumable upload for local files. The post's endpoint is the API base.

    Options (journaled as strings): ``account`` (your label for the channel:
    quota holds and token providers are per account), ``privacy_status``
    (``private``, ``unlisted`` or ``public``; a post's
    ``metadata["privacy_status"]`` wins), ``category_id``, ``chunk_size``
    (rounded down to a multiple of 256 KiB), ``upload_limit_wait_s``,
    ``max_restarts``, and ``session_uri``: a session another client began
    (google-api-python-client's ``resumable_uri``, say), which this post
    finishes: its offset is asked first, and it is never begun again.
    """

    name = "youtube"

    def __init__(
        self, auth: HeaderPolicy | None = None, *, account: str = "",
        privacy_status: str = DEFAULT_PRIVACY, category_id: str = DEFAULT_CATEGORY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        upload_limit_wait_s: float = DEFAULT_UPLOAD_LIMIT_WAIT_S,
        max_restarts: int = DEFAULT_MAX_RESTARTS, session_uri: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if privacy_status not in ("private", "unlisted", "public"):
            raise ValueError(f"privacy_status must be private, unlisted or public, "
                             f"not {privacy_status!r}")  # fmt: skip
        if chunk_size < GRANULE or max_restarts < 0 or upload_limit_wait_s < 0:
            raise ValueError(f"chunk_size must be >= {GRANULE}; max_restarts and "
                             "upload_limit_wait_s >= 0")  # fmt: skip
        self.auth = auth if auth is not None else HeaderPolicy()
        self.account = account
        self.privacy_status = privacy_status
        self.category_id = category_id
        self.chunk_size = chunk_size - chunk_size % GRANULE
        self.upload_limit_wait_s = upload_limit_wait_s
        self.max_restarts = max_restarts
        self.session_uri = session_uri
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], auth: HeaderPolicy, *, clock: Callable[[], float]
    ) -> YouTubePlatform:
        return cls(
            auth, account=config.get("account", ""),
            privacy_status=config.get("privacy_status", DEFAULT_PRIVACY),
            category_id=config.get("category_id", DEFAULT_CATEGORY),
            chunk_size=int(config.get("chunk_size", DEFAULT_CHUNK_SIZE)),
            upload_limit_wait_s=float(
                config.get("upload_limit_wait_s", DEFAULT_UPLOAD_LIMIT_WAIT_S)),
            max_restarts=int(config.get("max_restarts", DEFAULT_MAX_RESTARTS)),
            session_uri=config.get("session_uri", ""), clock=clock,
        )  # fmt: skip

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({
            "account": self.account, "privacy_status": self.privacy_status,
            "category_id": self.category_id, "chunk_size": str(self.chunk_size),
            "upload_limit_wait_s": repr(self.upload_limit_wait_s),
            "max_restarts": str(self.max_restarts), "session_uri": self.session_uri,
        })  # fmt: skip

    def api(self, endpoint: str) -> YouTubeApi:
        return YouTubeApi(endpoint, self.auth, account=self.account, clock=self.clock,
                          upload_limit_wait_s=self.upload_limit_wait_s)  # fmt: skip

    def begin(self, job: UploadJob) -> PlatformUpload:
        return YouTubeUpload(self, job)

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        """No publish call: the first ``videos.list`` right after the upload ended."""
        return self.check(post)

    def check(self, post: Post) -> Flow[CheckResult]:
        """``videos.list`` for the journaled video id; without one, the session is asked."""
        api = self.api(post.endpoint)
        state = post.extra.get("youtube") or {}
        if state.get("video_id"):
            return (yield from api.video_status(str(state["video_id"])))
        session = state.get("session_uri")
        if not session or session != post.upload_url:
            return CheckResult(CheckStatus.NOT_PROCESSED, "no YouTube upload session was started")
        size = post.identity.size
        req = Request("PUT", session, (yield from api.headers(
            session, ("Content-Range", f"bytes */{size}"))), b"")  # fmt: skip
        resp: Response = yield req
        if resp.status in (200, 201):
            video_id = _video_id(req, resp)
            return (yield from api.video_status(video_id))
        if resp.status == 308:
            held = held_range(resp, where=f"PUT {session}")
            why = f"YouTube holds {held:,} of {size:,} bytes"
            return CheckResult(CheckStatus.NOT_PROCESSED, why, detail=MappingProxyType(
                {"held": held}))  # fmt: skip
        if resp.status in (404, 410):
            if (post.sent_to or 0) >= size:
                return CheckResult(CheckStatus.FAILED, _LAPSED_AFTER_LAST_BYTE)
            return CheckResult(CheckStatus.NOT_PROCESSED,
                               f"the upload session lapsed ({resp.status}) before every byte")
        raise (yield from api.fail(req, resp, what="asking the YouTube session failed",
                                   read=True))  # fmt: skip

    def cancel(self, post: Post) -> Flow[None] | None:
        """Nothing is asked of YouTube: an unfinished session simply lapses."""
        return None


_LAPSED_AFTER_LAST_BYTE = (
    "the upload session lapsed after its last byte was sent and its answer was lost: YouTube "
    "may have made the video, so steadypost does not upload it again on its own; look at the "
    "channel's uploads, and post again (a new post) only if it is not there"
)


def _video_id(req: Request, resp: Response) -> str:
    data = json_object(req, resp)
    video_id = data.get("id")
    if not isinstance(video_id, str) or not video_id.strip():
        raise ProtocolError(f"{req.method} {req.url}: the finished upload names no video id")
    return video_id.strip()


class SessionLapsedError(SteadypostError):
    """The session is gone although its last byte was sent: maybe a video, never a second one."""

    outcome = Outcome.REJECTED


class YouTubeUpload:
    """One run of a YouTube post's upload (see the module docstring for the steps)."""

    def __init__(self, platform: YouTubePlatform, job: UploadJob) -> None:
        self.platform = platform
        self.api = platform.api(job.post.endpoint)
        self.post = job.post
        self.file = job.file
        self.retry = job.retry
        size = job.file.size
        chunk = job.chunk_size or platform.chunk_size
        self.chunk = max(GRANULE, chunk - chunk % GRANULE)
        self.wire = WireMeter.for_file(self.retry.policy, size, min(self.chunk, size),
                                       spent=job.post.bytes_sent)  # fmt: skip
        state = job.post.extra.get("youtube") or {}
        url = job.post.upload_url
        journaled = bool(url) and url == state.get("session_uri")
        self.session: str | None = url if journaled else None
        self.acknowledged = job.post.offset if journaled else 0
        self.sent_to = (job.post.sent_to if job.post.sent_to is not None else size) \
            if journaled else 0  # fmt: skip
        self.video_id: str | None = str(state["video_id"]) if state.get("video_id") else None
        self.need_probe = journaled and self.video_id is None
        self.state: dict[str, Any] = dict(state)
        self.adopt = platform.session_uri if not journaled and not state else ""

    def run(self) -> Flow[UploadResult]:
        restarts = 0
        if self.adopt:  # a session another client began: journaled, then asked
            uri = resolve_url(self.api.base, self.adopt, what="the session_uri option")
            self.state = {"session_uri": uri, "adopted_at": self.retry.clock()}
            self.session, self.sent_to, self.need_probe = uri, self.file.size, True
            yield Emit(UploadCreated(uri, None, 0, extra={"youtube": dict(self.state)}))
        while True:
            try:
                if self.session is None:
                    yield from self._initiate()
                elif self.video_id is None:
                    yield Emit(OffsetAcknowledged(self.session, self.acknowledged,
                                                  self.file.size))  # fmt: skip
                while self.video_id is None:
                    yield from with_retries(self._step, self.retry, retry_if=self._retryable)
                assert self.session is not None
                size = self.file.size
                return UploadResult(self.session, size, size)
            except UploadGoneError as exc:
                if self.sent_to >= self.file.size:
                    raise SessionLapsedError(_LAPSED_AFTER_LAST_BYTE) from exc
                restarts += 1
                if restarts > self.platform.max_restarts:
                    raise
                yield Emit(UploadRestarted(self.session, str(exc)))
                self.session, self.acknowledged, self.sent_to = None, 0, 0
                self.need_probe = False
                yield from wait_before_retry(self.retry, restarts,
                                             "YouTube's upload session is gone: starting a new one")

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, TokenRefusedError) or is_transient(self.retry.policy, exc)

    # -- the session --

    def _initiate(self) -> Flow[None]:
        yield from self.api.gate()
        self.state = {"init_started_at": self.retry.clock()}
        yield Emit(PlatformState({"youtube": dict(self.state)}))  # the intent, before the POST
        session = yield from with_retries(self._initiate_once, self.retry,
                                          retry_if=self._retryable)  # fmt: skip
        self.state.update(session_uri=session, session_started_at=self.retry.clock())
        self.session, self.acknowledged, self.sent_to, self.need_probe = session, 0, 0, False
        yield Emit(UploadCreated(session, None, 0, extra={"youtube": dict(self.state)}))
        yield Emit(OffsetAcknowledged(session, 0, self.file.size))

    def _initiate_once(self) -> Flow[str]:
        url = f"{self.api.base}{UPLOAD_PATH}?uploadType=resumable&part=snippet,status"
        headers = yield from self.api.headers(
            url, ("Content-Type", _JSON), ("X-Upload-Content-Length", str(self.file.size)),
            ("X-Upload-Content-Type", self._mime()),
        )  # fmt: skip
        req = Request("POST", url, headers, json.dumps(self._resource()).encode())
        resp: Response = yield req
        if resp.status == 200 and resp.header("location"):
            return resolve_url(url, resp.header("location") or "", what="YouTube's session URI")
        if resp.status == 200:
            raise ProtocolError(f"POST {url}: the answer has no session URI (Location)")
        raise (yield from self.api.fail(req, resp, what="starting the YouTube upload failed"))

    def _mime(self) -> str:
        kind = self.file.filetype
        return kind if kind.startswith("video/") else "application/octet-stream"

    def _resource(self) -> dict[str, Any]:
        meta = self.post.metadata
        title = meta.get("title") or meta.get("caption") or os.path.splitext(self.file.filename)[0]
        category = meta.get("category_id") or self.platform.category_id
        snippet: dict[str, Any] = {"title": title[:100], "categoryId": category}
        if meta.get("description"):
            snippet["description"] = meta["description"]
        tags = [t.strip() for t in meta.get("tags", "").split(",") if t.strip()]
        if tags:
            snippet["tags"] = tags
        status: dict[str, Any] = {
            "privacyStatus": meta.get("privacy_status") or self.platform.privacy_status}
        if "made_for_kids" in meta:
            status["selfDeclaredMadeForKids"] = meta["made_for_kids"].lower() in ("1", "true")
        return {"snippet": snippet, "status": status}

    # -- one attempt: the offset if unknown, then one chunk --

    def _step(self) -> Flow[None]:
        if self.need_probe:
            yield from self._probe()
            if self.video_id is not None:
                return
        assert self.session is not None
        size, first = self.file.size, self.acknowledged
        body = FileBody(self.file, first, min(self.chunk, size - first))
        what = f"sending bytes {first:,}+ of {self.file.path}"
        yield from self.wire.sending(self.session, body, what=what)
        self.sent_to = max(self.sent_to, body.end)
        headers = yield from self.api.headers(
            self.session, ("Content-Type", self._mime()),
            ("Content-Range", f"bytes {first}-{body.end - 1}/{size}"),
        )  # fmt: skip
        req = Request("PUT", self.session, headers, body)
        try:
            resp = yield from self.wire.exchange(req)
        except (ConnectFailedError, CertificateError, HostUnavailableError):
            raise  # nothing of it left
        except TransportError:
            self.need_probe = True  # some of it (or all) may have arrived
            raise
        yield from self._answered(req, resp, sent_end=body.end)

    def _probe(self) -> Flow[None]:
        """``PUT`` with ``bytes */TOTAL``: how much YouTube holds, or the upload's final answer."""
        assert self.session is not None
        size = self.file.size
        headers = yield from self.api.headers(self.session, ("Content-Range", f"bytes */{size}"))
        req = Request("PUT", self.session, headers, b"")
        resp: Response = yield req
        if resp.status == 308:
            held = self._held(req, resp)
            self.acknowledged, self.need_probe = held, held >= size
            yield Emit(OffsetReported(self.session, held, size))
            yield Emit(OffsetAcknowledged(self.session, held, size))
            if held >= size:
                yield from self._unfinished(req)
            return
        yield from self._answered(req, resp, sent_end=self.sent_to)

    def _held(self, req: Request, resp: Response) -> int:
        held = held_range(resp, where=f"{req.method} {req.url}")
        if held > self.sent_to or held > self.file.size:
            raise ProtocolError(
                f"{req.method} {req.url}: YouTube claims {held:,} bytes, but only "
                f"{self.sent_to:,} were ever sent to this session"
            )
        return held

    def _answered(self, req: Request, resp: Response, *, sent_end: int) -> Flow[None]:
        assert self.session is not None
        size = self.file.size
        if resp.status in (200, 201):
            if sent_end < size:
                raise ProtocolError(f"{req.method} {req.url}: YouTube says the upload ended "
                                    f"after {sent_end:,} of {size:,} bytes were sent")
            self.video_id = _video_id(req, resp)
            self.state.update(video_id=self.video_id, uploaded_at=self.retry.clock())
            yield Emit(PlatformState({"youtube": dict(self.state)}))
            yield Emit(OffsetAcknowledged(self.session, size, size))
            return
        if resp.status == 308:
            held = self._held(req, resp)
            moved, self.acknowledged = held > self.acknowledged, held
            yield Emit(OffsetAcknowledged(self.session, held, size))
            if not moved:
                yield NoProgress(req.url, "YouTube took the chunk but holds no more bytes")
                raise StalledError(f"{req.method} {req.url}: YouTube still holds {held:,} bytes")
            if held >= size:
                self.need_probe = True
                yield from self._unfinished(req)
            return
        if resp.status in (404, 410):
            raise UploadGoneError(f"YouTube's upload session is gone ({resp.status})")
        self.need_probe = True
        raise (yield from self.api.fail(req, resp, what="sending to YouTube failed"))

    def _unfinished(self, req: Request) -> Flow[None]:
        """Every byte is held but the upload did not end: a wait, then the probe again."""
        yield NoProgress(req.url, "YouTube holds every byte but did not finish the upload")
        raise StalledError(f"{req.method} {req.url}: YouTube holds every byte but answered 308")

