"""Instagram Reels (Graph API, resumable upload): a container, its bytes, then one publish.

::

    from steadypost.platforms.instagram import GRAPH_API, InstagramPlatform

    with Uploader(headers={"Authorization": f"Bearer {long_lived_token}"}) as up:
        up.post("clip.mp4", GRAPH_API, metadata={"caption": "Sunset #beach"},
                platform=InstagramPlatform(ig_user_id="17841400000000000"))

What happens, and what the journal keeps (``post.extra["instagram"]``):

1. The intent is journaled, then ``POST /{ig_user_id}/media?media_type=REELS
   &upload_type=resumable`` (with the caption) makes a container; its id is
   journaled the moment it arrives. A container is not a post (unpublished
   ones expire after 24 hours), so a creation whose answer was lost is made again.
2. The bytes go by ``POST https://rupload.facebook.com/ig-api-upload/{container}``
   with ``Authorization: OAuth <token>``, ``offset: 0`` and ``file_size``.
   Meta documents no chunking or offset query for it, so the whole file goes
   in one request and a failed one is sent again from byte 0 (bounded by the
   wire bound).
3. Publishing: the container's ``status_code`` is polled (``IN_PROGRESS`` ->
   wait ``poll_s``; ``FINISHED`` -> publish; ``ERROR`` -> failed with its
   ``status``; ``EXPIRED`` -> a new container; ``PUBLISHED`` -> done, never
   published again). The account's 24-hour publishing limit is read from
   ``content_publishing_limit`` before each publish; a full quota makes the
   post wait. Then the intent, then ``POST /{ig_user_id}/media_publish
   ?creation_id={container}``.
4. A ``media_publish`` whose answer was lost (a timeout, a 5xx, a duplicate
   error) is never sent again: the post is ``unconfirmed`` and the check
   reads the container: ``PUBLISHED`` -> confirmed; ``FINISHED`` -> not
   published, so it is published then (once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from steadypost.errors import (
    Outcome,
    PlatformError,
    ProtocolError,
    UploadGoneError,
)
from steadypost.flow import Emit, FileBody, Flow, Request, Response, Sleep, WireMeter, with_retries
from steadypost.flow.events import (
    OffsetAcknowledged,
    PlatformState,
    UploadCreated,
)
from steadypost.models import Post, UploadResult
from steadypost.origins import origin_of
from steadypost.platforms.base import CheckResult, CheckStatus, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, json_object
from steadypost.platforms.instagram.api import (
    CONTAINER_LIFETIME_S,
    GRAPH_API,
    RUPLOAD,
    container_result,
    graph_error,
)

__all__ = ["GRAPH_API", "InstagramPlatform"]

#: Threads' documented advice (once a minute, at most five minutes), assumed for Reels.
DEFAULT_POLL_S = 60.0
DEFAULT_READY_WAIT_S = 300.0
DEFAULT_LIMIT_WAIT_S = 3600.0


class InstagramPlatform:
    """Instagram Reels for local files. The post's endpoint is the Graph API base.

    Options (journaled as strings): ``ig_user_id`` (required: the Instagram
    professional account's id), ``account`` (your label), ``api_version``
    (e.g. ``v23.0``; empty: the app's default), ``upload_base`` (where the
    bytes go; empty: ``rupload.facebook.com`` for Meta's API, the endpoint
    itself otherwise), ``poll_s``, ``ready_wait_s``, ``limit_wait_s``.
    """

    name = "instagram"

    def __init__(
        self, auth: HeaderPolicy | None = None, *, ig_user_id: str = "", account: str = "",
        api_version: str = "", upload_base: str = "", poll_s: float = DEFAULT_POLL_S,
        ready_wait_s: float = DEFAULT_READY_WAIT_S, limit_wait_s: float = DEFAULT_LIMIT_WAIT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if poll_s <= 0 or ready_wait_s < 0 or limit_wait_s < 0:
            raise ValueError("poll_s must be > 0; ready_wait_s and limit_wait_s >= 0")
        self.auth = auth if auth is not None else HeaderPolicy()
        self.ig_user_id, self.account, self.api_version = ig_user_id, account, api_version
        self.upload_base = upload_base
        self.poll_s, self.ready_wait_s, self.limit_wait_s = poll_s, ready_wait_s, limit_wait_s
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], auth: HeaderPolicy, *, clock: Callable[[], float]
    ) -> InstagramPlatform:
        return cls(
            auth, ig_user_id=config["ig_user_id"], account=config.get("account", ""),
            api_version=config.get("api_version", ""), upload_base=config.get("upload_base", ""),
            poll_s=float(config.get("poll_s", DEFAULT_POLL_S)),
            ready_wait_s=float(config.get("ready_wait_s", DEFAULT_READY_WAIT_S)),
            limit_wait_s=float(config.get("limit_wait_s", DEFAULT_LIMIT_WAIT_S)), clock=clock,
        )  # fmt: skip

    def config(self) -> Mapping[str, str]:
        return MappingProxyType({
            "ig_user_id": self.ig_user_id, "account": self.account,
            "api_version": self.api_version, "upload_base": self.upload_base,
            "poll_s": repr(self.poll_s), "ready_wait_s": repr(self.ready_wait_s),
            "limit_wait_s": repr(self.limit_wait_s),
        })  # fmt: skip

    # -- URLs and headers --

    def graph(self, endpoint: str, path: str, **query: str) -> str:
        version = f"/{self.api_version.strip('/')}" if self.api_version else ""
        tail = f"?{urlencode(query)}" if query else ""
        return f"{endpoint.rstrip('/')}{version}/{path.lstrip('/')}{tail}"

    def upload_url(self, endpoint: str, container: str) -> str:
        base = self.upload_base or (RUPLOAD if origin_of(endpoint) == origin_of(GRAPH_API)
                                    else endpoint)  # fmt: skip
        version = f"/{self.api_version.strip('/')}" if self.api_version else ""
        return f"{base.rstrip('/')}/ig-api-upload{version}/{container}"

    def _token(self) -> str:
        value = next((v for k, v in self.auth.headers.items() if k.lower() == "authorization"), "")
        return value.partition(" ")[2].strip() or value.strip()

    def upload_headers(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        """The documented ``Authorization: OAuth <token>`` of the upload host, and ``extra``."""
        token = self._token()
        return ((("Authorization", f"OAuth {token}"),) if token else ()) + extra

    # -- the platform protocol --

    def begin(self, job: UploadJob) -> PlatformUpload:
        if not self.ig_user_id:
            raise ValueError("an Instagram post needs the ig_user_id option")
        return InstagramUpload(self, job)

    def container_status(self, endpoint: str, container: str) -> Flow[dict[str, Any]]:
        url = self.graph(endpoint, container, fields="status_code,status")
        req = Request("GET", url, self.auth.for_url(url, ("Accept", "application/json")))
        resp: Response = yield req
        if resp.status != 200:
            raise graph_error(req, resp, now=self.clock(), what="asking for the container",
                              read=True)  # fmt: skip
        return json_object(req, resp)

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        return self._publish(post)

    def _publish(self, post: Post) -> Flow[CheckResult]:
        container = str((post.extra.get("instagram") or {}).get("container_id") or "")
        if not container:
            raise ProtocolError("the journal names no Instagram container to publish")
        waited = 0.0
        while True:
            data = yield from self.container_status(post.endpoint, container)
            code = str(data.get("status_code") or "")
            if code != "IN_PROGRESS":
                break
            if waited >= self.ready_wait_s:
                return container_result(data, uploaded=True)  # still processing: checked later
            yield Sleep(self.poll_s, "Instagram is processing the Reel")
            waited += self.poll_s
        if code != "FINISHED":
            return container_result(data, uploaded=True)  # published already, failed, expired
        yield from self._check_limit(post.endpoint)
        yield Emit(PlatformState({"instagram": {**(post.extra.get("instagram") or {}),
                                                "publish_sent_at": self.clock()}}))  # fmt: skip
        url = self.graph(post.endpoint, f"{self.ig_user_id}/media_publish", creation_id=container)
        req = Request("POST", url, self.auth.for_url(url, ("Accept", "application/json")))
        resp: Response = yield req
        if resp.status != 200:
            raise graph_error(req, resp, now=self.clock(), what="publishing the Reel failed",
                              publish=True)  # fmt: skip
        media = json_object(req, resp).get("id")
        detail = MappingProxyType({"media_id": str(media or ""), "container_id": container})
        return CheckResult(CheckStatus.PROCESSED, "Instagram published the Reel", detail=detail)

    def _check_limit(self, endpoint: str) -> Flow[None]:
        """The account's 24-hour publishing limit, read from the API before each publish."""
        url = self.graph(endpoint, f"{self.ig_user_id}/content_publishing_limit",
                         fields="quota_usage,config")  # fmt: skip
        req = Request("GET", url, self.auth.for_url(url, ("Accept", "application/json")))
        resp: Response = yield req
        if resp.status != 200:
            raise graph_error(req, resp, now=self.clock(), what="reading the publishing limit",
                              read=True)  # fmt: skip
        rows = json_object(req, resp).get("data")
        row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
        usage = row.get("quota_usage")
        config = row.get("config") if isinstance(row.get("config"), dict) else {}
        total = config.get("quota_total") if isinstance(config, dict) else None
        if isinstance(usage, int) and isinstance(total, int) and usage >= total:
            raise PlatformError(
                f"the account published {usage} of its {total} posts allowed in 24 hours: "
                f"the post waits {self.limit_wait_s / 60:.0f} min", code="publishing_limit",
                status=403, outcome=Outcome.NOT_DELIVERED, retry_after=self.limit_wait_s,
            )  # fmt: skip

    def check(self, post: Post) -> Flow[CheckResult]:
        """The container's ``status_code``: ``PUBLISHED`` is the only proof of a post."""
        state = post.extra.get("instagram") or {}
        container = state.get("container_id")
        if not container:
            return CheckResult(CheckStatus.NOT_PROCESSED, "no Instagram container was made yet")
        data = yield from self.container_status(post.endpoint, str(container))
        return container_result(data, uploaded=bool(state.get("uploaded")))

    def cancel(self, post: Post) -> Flow[None] | None:
        """Nothing is asked of Instagram: an unpublished container expires by itself."""
        return None


class InstagramUpload:
    """One run of an Instagram post's upload: the container and its bytes."""

    def __init__(self, platform: InstagramPlatform, job: UploadJob) -> None:
        self.platform = platform
        self.post, self.file, self.retry = job.post, job.file, job.retry
        self.endpoint = job.post.endpoint
        self.state: dict[str, Any] = dict(job.post.extra.get("instagram") or {})
        url = job.post.upload_url
        journaled = bool(url) and url == self.state.get("upload_url")
        self.container = str(self.state["container_id"]) if journaled else None
        self.wire = WireMeter.for_file(self.retry.policy, self.file.size, self.file.size,
                                       spent=job.post.bytes_sent)  # fmt: skip

    def run(self) -> Flow[UploadResult]:
        for _ in range(3):
            if self.container is not None and self.state.get("uploaded"):
                data = yield from with_retries(lambda: self.platform.container_status(
                    self.endpoint, str(self.container)), self.retry)  # fmt: skip
                if str(data.get("status_code") or "") != "EXPIRED":
                    return self._result()  # the publish step reads it again
                self.container = None  # expired unpublished: nothing was posted
            if self.container is None:
                yield from self._create()
            yield from with_retries(self._send, self.retry)
            return self._result()
        raise UploadGoneError("Instagram's containers keep expiring")

    def _result(self) -> UploadResult:
        size = self.file.size
        return UploadResult(str(self.state["upload_url"]), size, size)

    def _create(self) -> Flow[None]:
        self.state = {"create_started_at": self.retry.clock()}
        yield Emit(PlatformState({"instagram": dict(self.state)}))  # intent, before the POST
        container = yield from with_retries(self._create_once, self.retry)
        url = self.platform.upload_url(self.endpoint, container)
        now = self.retry.clock()
        self.state.update(container_id=container, upload_url=url, created_at=now)
        self.container = container
        yield Emit(UploadCreated(url, now + CONTAINER_LIFETIME_S, 0,
                                 extra={"instagram": dict(self.state)}))  # fmt: skip

    def _create_once(self) -> Flow[str]:
        query = {"media_type": "REELS", "upload_type": "resumable"}
        caption = self.post.metadata.get("caption") or self.post.metadata.get("title")
        if caption:
            query["caption"] = caption
        if self.post.metadata.get("share_to_feed"):
            query["share_to_feed"] = self.post.metadata["share_to_feed"]
        url = self.platform.graph(self.endpoint, f"{self.platform.ig_user_id}/media", **query)
        req = Request("POST", url, self.platform.auth.for_url(url, ("Accept", "application/json")))
        resp: Response = yield req
        if resp.status != 200:
            raise graph_error(req, resp, now=self.retry.clock(), what="making the container")
        container = json_object(req, resp).get("id")
        if not isinstance(container, str | int) or not str(container).strip().isdigit():
            raise ProtocolError(f"POST {url.split('?')[0]}: the answer has no container id")
        return str(container).strip()

    def _send(self) -> Flow[None]:
        """The whole file at offset 0 (no chunking or offset query is documented)."""
        size, url = self.file.size, str(self.state["upload_url"])
        body = FileBody(self.file, 0, size)
        yield from self.wire.sending(url, body, what=f"sending {self.file.path} to Instagram")
        headers = self.platform.upload_headers(
            ("offset", "0"), ("file_size", str(size)), ("Content-Type", "application/octet-stream"))
        req = Request("POST", url, headers, body)
        resp = yield from self.wire.exchange(req)
        if resp.status != 200:
            raise graph_error(req, resp, now=self.retry.clock(), what="uploading the video")
        answer = json_object(req, resp)
        if answer.get("success") is False:
            raise ProtocolError(f"POST {url}: Instagram says the upload did not succeed")
        self.state.update(uploaded=True, uploaded_at=self.retry.clock())
        yield Emit(PlatformState({"instagram": dict(self.state)}))
        yield Emit(OffsetAcknowledged(url, size, size))
