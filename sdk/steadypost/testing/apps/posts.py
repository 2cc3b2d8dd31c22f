"""The generic platform's post API: publish a finished upload, then ask how it went.

``POST /posts`` with JSON ``{"upload_url": ...}`` (other fields, such as a
caption, are kept) and an ``Idempotency-Key`` header answers ``202
{"post_id": ..., "status": "processing"}``. Sending the same key again returns
the same post instead of publishing a second copy, unless the simulator was
built with ``ignore_idempotency=True`` (a platform without that protection).
A post that failed with a *retryable* reason may be published again under its
key.

``GET /posts/{key or post_id}/status`` answers ``200 {"post_id", "status",
"reason", "retryable"}`` where status is ``processing``, ``processed``,
``failed`` or ``not_found``. ``not_found`` is a definite "this was never
published", the only answer after which re-posting is safe.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from steadypost.testing.apps.tus import TusApp
from steadypost.testing.exchange import BodySink, Buffered, Done, Fixed
from steadypost.testing.faults import Faults, RejectMedia, SlowProcessing
from steadypost.testing.messages import RequestHead, error_reply, json_reply
from steadypost.testing.records import PostInfo, PostStatus

POSTS_PATH = "/posts"
#: Largest publish request body accepted (JSON only, so small).
MAX_POST_BODY = 1 << 20


@dataclass(frozen=True)
class _Post:
    post_id: str
    key: str | None
    upload_id: str
    upload_url: str
    sha256: str
    created_at: float
    ready_at: float
    failure: RejectMedia | None
    request: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def status(self, now: float) -> PostStatus:
        if now < self.ready_at:
            return "processing"
        return "failed" if self.failure else "processed"

    def info(self, now: float) -> PostInfo:
        status = self.status(now)
        failed = self.failure if status == "failed" else None
        return PostInfo(
            post_id=self.post_id,
            idempotency_key=self.key,
            upload_id=self.upload_id,
            upload_url=self.upload_url,
            sha256=self.sha256,
            status=status,
            reason=failed.reason if failed else None,
            retryable=failed.retryable if failed else False,
            created_at=self.created_at,
            ready_at=self.ready_at,
            request=self.request,
        )


class PostApp:
    """``/posts``: publish and status, backed by the :class:`TusApp`'s finished uploads."""

    def __init__(
        self,
        *,
        tus: TusApp,
        faults: Faults,
        clock: Callable[[], float],
        lock: threading.RLock,
        processing_s: float,
        ignore_idempotency: bool,
        require_authorization: str | None,
    ) -> None:
        self._tus = tus
        self._faults = faults
        self._clock = clock
        self._lock = lock
        self.processing_s = processing_s
        self.ignore_idempotency = ignore_idempotency
        self._authorization = require_authorization
        self._posts: list[_Post] = []

    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` belongs to the post API."""
        return path == POSTS_PATH or path.startswith(POSTS_PATH + "/")

    def open(self, head: RequestHead) -> BodySink:
        """Start handling a post API request."""
        if self._authorization is not None and head.header("authorization") != self._authorization:
            return Fixed(error_reply(401, "missing or wrong Authorization"))
        if head.path.rstrip("/") == POSTS_PATH:
            if head.method != "POST":
                return Fixed(error_reply(405, headers=(("Allow", "POST"),)))
            key = head.header("idempotency-key")
            return Buffered(lambda body: self._publish(key, body), limit=MAX_POST_BODY)
        ref, _, tail = head.path[len(POSTS_PATH) + 1 :].partition("/")
        if tail != "status" or not ref:
            return Fixed(error_reply(404, "no such resource"))
        if head.method not in ("GET", "HEAD"):
            return Fixed(error_reply(405, headers=(("Allow", "GET"),)))
        return Fixed(self._status(ref))

    # --- inspection ---------------------------------------------------------------

    def infos(self) -> list[PostInfo]:
        """Every accepted post, oldest first, as of the current clock time."""
        with self._lock:
            now = self._clock()
            return [post.info(now) for post in self._posts]

    # --- endpoints ----------------------------------------------------------------

    def _publish(self, key: str | None, body: bytes) -> Done:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return Done(error_reply(400, "the body is not JSON"))
        if not isinstance(request, dict) or not isinstance(request.get("upload_url"), str):
            return Done(error_reply(400, 'expected JSON {"upload_url": "..."}'))
        upload = self._tus.completed_upload(request["upload_url"])
        if upload is None:
            return Done(error_reply(422, "upload_url is not a finished upload"))
        with self._lock:
            now = self._clock()
            existing = self._latest(key) if key and not self.ignore_idempotency else None
            if existing is not None:
                info = existing.info(now)
                if not (info.status == "failed" and info.retryable):
                    replay = {"post_id": info.post_id, "status": info.status}
                    return Done(json_reply(202, replay, headers=(("Idempotent-Replayed", "true"),)))
            slow = self._faults.take(SlowProcessing, now)
            failure = self._faults.take(RejectMedia, now)
            post = _Post(
                post_id=f"post_{uuid.uuid4().hex[:16]}",
                key=key,
                upload_id=upload.upload_id,
                upload_url=request["upload_url"],
                sha256=upload.sha256,
                created_at=now,
                ready_at=now + (slow.seconds if slow else self.processing_s),
                failure=failure,
                request=MappingProxyType(request),
            )
            self._posts.append(post)
        return Done(json_reply(202, {"post_id": post.post_id, "status": "processing"}),
                    step="publish")

    def _status(self, ref: str) -> Done:
        with self._lock:
            post = next((p for p in self._posts if p.post_id == ref), None) or self._latest(ref)
            if post is None:
                body: dict[str, Any] = {"post_id": None, "status": "not_found",
                                        "reason": "nothing was published under this id",
                                        "retryable": True}
            else:
                info = post.info(self._clock())
                body = {"post_id": info.post_id, "status": info.status,
                        "reason": info.reason, "retryable": info.retryable}
        return Done(json_reply(200, body))

    def _latest(self, key: str) -> _Post | None:
        return next((p for p in reversed(self._posts) if p.key == key), None)
