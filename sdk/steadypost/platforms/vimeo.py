"""Vimeo: the bytes go by tus to the link Vimeo hands out; confirmed once transcoding completes.

::

    from steadypost.platforms.vimeo import VIMEO_API, VimeoPlatform

    with Uploader(headers={"Authorization": f"Bearer {vimeo_token}"}) as up:
        up.post("talk.mp4", VIMEO_API, metadata={"title": "My talk"}, platform=VimeoPlatform())

From Vimeo's upload documentation and engineering blog:

1. ``POST /me/videos`` with ``{"upload": {"approach": "tus", "size": N}}``
   (plus ``name`` / ``description`` from the post's ``title`` / ``description``
   metadata) answers the video's ``uri`` and ``upload.upload_link``; both are
   journaled at once (``post.extra["vimeo"]``, and the link as the upload URL).
2. The bytes go to the upload link with the ordinary tus flow, ``HEAD`` and
   ``PATCH`` only (Vimeo made the upload: no tus creation request). The link
   is a capability URL on another host: it never gets your token.
3. ``GET {uri}?fields=upload.status,transcode.status``: transcoding
   ``complete`` -> confirmed, ``in_progress`` -> checked again later,
   ``error`` -> failed. An upload Vimeo reports incomplete is resumed.

A creation request whose answer was lost may leave an empty video on the
account; it is never given the bytes, and the post continues under a new one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from steadypost.errors import AuthorizationError, Outcome, ProtocolError, SteadypostError
from steadypost.flow import Emit, Flow, Request, Response, with_retries
from steadypost.flow.events import OffsetAcknowledged, PlatformState, UploadCreated
from steadypost.models import Post
from steadypost.platforms.base import CheckResult, CheckStatus, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, json_object, resolve_url, status_error
from steadypost.platforms.tus import ServerInfo, TusOptions, TusUpload
from steadypost.policy import is_transient

VIMEO_API = "https://api.vimeo.com"
CREATE_PATH = "/me/videos"
#: Vimeo's versioned media type (API 3.4, the version with tus uploads).
ACCEPT = "application/vnd.vimeo.*+json;version=3.4"
CHECK_FIELDS = "upload.status,transcode.status"
_TRANSCODE = {
    "complete": CheckStatus.PROCESSED,
    "in_progress": CheckStatus.PROCESSING,
    "error": CheckStatus.FAILED,
}


def _refused(resp: Response) -> AuthorizationError:
    return AuthorizationError(
        f"Vimeo refused the access token ({resp.status}): reconnect your Vimeo account "
        "(sign in again and allow uploads), then post again",
        platform="vimeo", code="unauthorized", status=resp.status,
    )  # fmt: skip


class VimeoPlatform:
    """Vimeo's API for local files. The post's endpoint is the API base (``VIMEO_API``)."""

    name = "vimeo"

    def __init__(
        self, auth: HeaderPolicy | None = None, *, account: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.auth = auth if auth is not None else HeaderPolicy()
        self.account = account
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], auth: HeaderPolicy, *, clock: Callable[[], float]
    ) -> VimeoPlatform:
        return cls(auth, account=config.get("account", ""), clock=clock)

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({"account": self.account})

    def begin(self, job: UploadJob) -> PlatformUpload:
        return VimeoUpload(self, job)

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        """No publish call: the first transcoding check right after the last byte."""
        return self.check(post)

    def check(self, post: Post) -> Flow[CheckResult]:
        uri = (post.extra.get("vimeo") or {}).get("uri")
        if not uri:
            return CheckResult(CheckStatus.NOT_PROCESSED, "no Vimeo video was created yet")
        base = resolve_url(post.endpoint, str(uri), what="the journaled Vimeo video uri")
        url = f"{base}{'&' if '?' in base else '?'}{urlencode({'fields': CHECK_FIELDS})}"
        req = Request("GET", url, self.auth.for_url(url, ("Accept", ACCEPT)))
        resp: Response = yield req
        if resp.status == 401:
            raise _refused(resp)
        if resp.status in (404, 410):
            return CheckResult(CheckStatus.FAILED, "the video is gone from Vimeo (deleted?)")
        if resp.status != 200:
            raise status_error(req, resp, what="checking the video failed",
                               read=True)  # fmt: skip
        data = json_object(req, resp)
        upload = str((data.get("upload") or {}).get("status") or "")
        transcode = str((data.get("transcode") or {}).get("status") or "")
        detail = MappingProxyType({"upload_status": upload, "transcode_status": transcode})
        acknowledged = post.offset >= post.identity.size
        if upload == "error":
            return CheckResult(CheckStatus.FAILED, "Vimeo reports the upload failed", detail=detail)
        if upload and upload != "complete" and not acknowledged:
            why = "Vimeo has not received every byte"
            return CheckResult(CheckStatus.NOT_PROCESSED, why, detail=detail)
        status = _TRANSCODE.get(transcode)
        if status is None:
            raise ProtocolError(f"GET {url}: unknown transcode.status {transcode!r}")
        return CheckResult(status, f"transcoding: {transcode}", detail=detail)

    def cancel(self, post: Post) -> Flow[None] | None:
        """Nothing is deleted on Vimeo: a video already transcoding may be what you want."""
        return None


class VimeoUpload(TusUpload):
    """tus to Vimeo's upload link; "creating the upload" is Vimeo's ``POST /me/videos``."""

    def __init__(self, platform: VimeoPlatform, job: UploadJob) -> None:
        post = job.post
        options = TusOptions(
            chunk_size=job.chunk_size or job.default_chunk_size,
            headers=platform.auth.headers,
            allowed_origins=platform.auth.trusted,
            checksum=False,
        )
        state = post.extra.get("vimeo") or {}
        journaled = bool(state.get("uri")) and state.get("upload_link") == post.upload_url
        link = post.upload_url if journaled else None
        super().__init__(
            post.endpoint, job.file, options, job.retry, info=ServerInfo(), upload_url=link,
            known_offset=post.offset if link else 0, sent_to=post.sent_to,
            bytes_sent=post.bytes_sent,
        )  # fmt: skip
        self.post = post

    def _begin(self, info: ServerInfo) -> Flow[None]:
        yield Emit(PlatformState({"vimeo": {"create_started_at": self.retry.clock()}}))
        link, uri, page = yield from with_retries(self._create_video, self.retry,
                                                  retry_if=self._not_delivered)  # fmt: skip
        self.upload_url, self.acknowledged, self.expires_at, self.sent_to = link, 0, None, 0
        state = {"uri": uri, "link": page, "upload_link": link, "created_at": self.retry.clock()}
        yield Emit(UploadCreated(link, None, 0, extra={"vimeo": state}))
        yield Emit(OffsetAcknowledged(link, 0, self.file.size))

    def _not_delivered(self, exc: BaseException) -> bool:
        """A creation is resent only when it certainly made nothing."""
        return (isinstance(exc, SteadypostError) and exc.outcome is Outcome.NOT_DELIVERED
                and is_transient(self.retry.policy, exc))  # fmt: skip

    def _create_video(self) -> Flow[tuple[str, str, str | None]]:
        url = self.endpoint.rstrip("/") + CREATE_PATH
        meta = self.post.metadata
        body: dict[str, Any] = {"upload": {"approach": "tus", "size": self.file.size}}
        name = meta.get("title") or meta.get("caption")
        if name:
            body["name"] = name
        if meta.get("description"):
            body["description"] = meta["description"]
        headers = self.auth.for_url(url, ("Accept", ACCEPT), ("Content-Type", "application/json"))
        req = Request("POST", url, headers, json.dumps(body).encode())
        resp: Response = yield req
        if resp.status == 401:
            raise _refused(resp)
        if not 200 <= resp.status < 300:
            raise status_error(req, resp, what="creating the video failed")
        data = json_object(req, resp)
        raw = data.get("upload")
        upload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        link, uri = upload.get("upload_link"), data.get("uri")
        if upload.get("approach", "tus") != "tus" or not isinstance(link, str) or not link:
            raise ProtocolError(f"POST {url}: the answer has no tus upload_link")
        link = resolve_url(url, link, what=f"POST {url}: the upload_link")
        if not isinstance(uri, str) or not uri:
            raise ProtocolError(f"POST {url}: the answer has no video uri")
        page = data.get("link")
        return link, uri, page if isinstance(page, str) else None
