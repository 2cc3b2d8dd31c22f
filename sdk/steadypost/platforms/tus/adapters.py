"""Plain tus, and tus plus a small post API (publish with an idempotency key, status by id).

``TusPlatform``
    The upload is the post. Processed means ``HEAD`` shows
    ``Upload-Offset == Upload-Length``.
``PostApiPlatform``
    The bytes go up with tus, then ``POST publish_url`` publishes them with
    an ``Idempotency-Key: <post id>`` header and ``{"upload_url", "metadata"}``;
    ``GET status_url`` (a template with ``{post_id}``) answers
    ``{"status": "processed"|"processing"|"failed"|"not_found", "reason",
    "retryable"}``. This is the shape :mod:`steadypost.testing` simulates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from steadypost.errors import JournalError, ProtocolError
from steadypost.flow import Flow, Request, Response
from steadypost.models import Post
from steadypost.platforms.base import CheckResult, CheckStatus, Platform, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, json_object, status_error
from steadypost.platforms.tus import TUS_VERSION, TusOptions, TusUpload
from steadypost.policy import header_int

_STATUS = {
    "processed": CheckStatus.PROCESSED,
    "processing": CheckStatus.PROCESSING,
    "failed": CheckStatus.FAILED,
    "not_found": CheckStatus.NOT_PROCESSED,
}


class TusPlatform:
    """A plain tus server: the upload is the post."""

    name = "tus"

    def __init__(self, auth: HeaderPolicy, *, clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.clock = clock

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({})

    def begin(self, job: UploadJob) -> PlatformUpload:
        """A tus upload to the post's endpoint, resumed from the journaled upload URL."""
        post = job.post
        options = TusOptions(
            chunk_size=job.chunk_size or job.default_chunk_size,
            headers=self.auth.headers,
            allowed_origins=self.auth.trusted,
            metadata=MappingProxyType({**post.metadata, "post_id": post.post_id}),
            checksum=job.checksum,
        )
        return TusUpload(
            post.endpoint, job.file, options, job.retry, info=job.server_info,
            upload_url=post.upload_url, known_offset=post.offset if post.upload_url else 0,
            expires_at=post.upload_expires_ts, sent_to=post.sent_to, bytes_sent=post.bytes_sent,
            answered=job.answered,
        )  # fmt: skip

    def cancel(self, post: Post) -> Flow[None] | None:
        """tus termination: ``DELETE`` the upload (already gone is fine)."""
        return self._terminate(post.upload_url) if post.upload_url else None

    def _terminate(self, url: str) -> Flow[None]:
        req = Request("DELETE", url, self.auth.for_url(url, ("Tus-Resumable", TUS_VERSION)))
        resp: Response = yield req
        if resp.status not in (200, 204, 404, 410):
            raise status_error(req, resp, what="cancelling the upload failed")

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        return None

    def check(self, post: Post) -> Flow[CheckResult]:
        url = post.upload_url
        if not url:
            return _nothing_uploaded()
        return self._head(url, post.identity.size, post.sent_to)

    def _head(self, url: str, size: int, sent_to: int | None) -> Flow[CheckResult]:
        req = Request("HEAD", url, self.auth.for_url(url, ("Tus-Resumable", TUS_VERSION)))
        resp: Response = yield req
        if resp.status in (404, 410):
            return CheckResult(CheckStatus.NOT_PROCESSED, f"the upload is gone ({resp.status})")
        if resp.status not in (200, 204):
            raise status_error(req, resp, what="checking the upload failed")
        offset = header_int(resp.header("upload-offset"), name="Upload-Offset", where=f"HEAD {url}")
        if offset > size or (sent_to is not None and offset > sent_to):
            sent = "" if sent_to is None else f" ({sent_to} were ever sent to it)"
            raise ProtocolError(
                f"HEAD {url}: the server claims {offset} bytes of a {size}-byte file{sent}"
            )
        detail = {"offset": offset, "length": size}
        if offset == size:
            return CheckResult(CheckStatus.PROCESSED, "the server holds every byte", detail=detail)
        return CheckResult(
            CheckStatus.NOT_PROCESSED, f"the server holds {offset} of {size} bytes", detail=detail
        )


def _nothing_uploaded() -> Flow[CheckResult]:
    return CheckResult(CheckStatus.NOT_PROCESSED, "no upload was begun")
    yield  # pragma: no cover - makes this a generator


class PostApiPlatform(TusPlatform):
    """tus for the bytes, then a publish call and a JSON status endpoint per post."""

    name = "post-api"

    def __init__(
        self, auth: HeaderPolicy, *, publish_url: str, status_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        super().__init__(auth, clock=clock)
        if "{post_id}" not in status_url:
            raise ValueError("status_url must contain {post_id}, e.g. https://x/posts/{post_id}")
        self.publish_url = publish_url
        self.status_url = status_url

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({"publish_url": self.publish_url, "status_url": self.status_url})

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        return self._publish(post, upload_url)

    def _publish(self, post: Post, upload_url: str) -> Flow[CheckResult]:
        body = json.dumps({"upload_url": upload_url, "metadata": dict(post.metadata)}).encode()
        headers = self.auth.for_url(
            self.publish_url,
            ("Idempotency-Key", post.post_id),
            ("Content-Type", "application/json"),
        )
        req = Request("POST", self.publish_url, headers, body)
        resp: Response = yield req
        if resp.status >= 300:
            raise status_error(req, resp, what="publishing failed")
        return self._result(req, resp)

    def check(self, post: Post) -> Flow[CheckResult]:
        return self._status(post)

    def _status(self, post: Post) -> Flow[CheckResult]:
        url = self.status_url.format(post_id=post.post_id)
        req = Request("GET", url, self.auth.for_url(url, ("Accept", "application/json")))
        resp: Response = yield req
        if resp.status == 404:
            return CheckResult(CheckStatus.NOT_PROCESSED, "the platform has no such post")
        if resp.status != 200:
            raise status_error(req, resp, what="checking the post failed",
                               read=True)  # fmt: skip
        return self._result(req, resp)

    @staticmethod
    def _result(req: Request, resp: Response) -> CheckResult:
        """Read ``{"status", "reason", "retryable"}``; anything else is a protocol error."""
        data = json_object(req, resp)
        raw = str(data.get("status", ""))
        status = _STATUS.get(raw)
        if status is None:
            raise ProtocolError(f"{req.method} {req.url}: unknown post status {raw!r}")
        reason = data.get("reason")
        return CheckResult(
            status,
            str(reason) if reason else None,
            retryable=bool(data.get("retryable", False)),
            detail=MappingProxyType({k: v for k, v in data.items() if k != "metadata"}),
        )


def platform_for(
    name: str, config: Mapping[str, str], auth: HeaderPolicy,
    *, clock: Callable[[], float] = time.time,
) -> Platform:  # fmt: skip
    """Rebuild a post's platform adapter from what the journal kept."""
    if name == TusPlatform.name:
        return TusPlatform(auth, clock=clock)
    if name == PostApiPlatform.name:
        try:
            return PostApiPlatform(
                auth, publish_url=config["publish_url"], status_url=config["status_url"],
                clock=clock,
            )  # fmt: skip
        except KeyError as exc:
            raise JournalError(f"a post-api post was journaled without its {exc.args[0]}") from exc
    raise JournalError(f"the journal names an unknown platform {name!r}")
