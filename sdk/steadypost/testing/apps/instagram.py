"""An Instagram-shaped platform: Reels by the Graph API's resumable upload.

Served by :class:`~steadypost.testing.PlatformSimulator` beside the others,
at the Graph API's paths (with or without a ``/vNN.N`` version):

``POST /{ig_user_id}/media?media_type=REELS&upload_type=resumable&caption=...``
    makes a container: ``{"id", "uri"}`` (``uri`` is the upload URL).
``POST /ig-api-upload/[vNN.N/]{container}``
    the bytes, with ``Authorization: OAuth <token>``, ``offset`` and
    ``file_size`` (no ``offset``: 400). Undocumented, so assumed: the whole
    file in one request at offset 0; an ``offset`` of 0 starts over, any other
    must equal the bytes held. Answers ``{"success": true}``.
``GET /{container}?fields=status_code,status``
    ``IN_PROGRESS`` for ``processing_s`` after the last byte, then ``FINISHED``
    (or ``ERROR`` for a container made while ``RejectMedia`` was active);
    ``PUBLISHED`` once published; ``EXPIRED`` 24 h after creation unpublished.
``GET /{ig_user_id}/content_publishing_limit?fields=quota_usage,config``
    ``{"data": [{"quota_usage", "config": {"quota_total", "quota_duration"}}]}``.
``POST /{ig_user_id}/media_publish?creation_id={container}``
    publishes a ``FINISHED`` container once (``{"id": media id}``); over the
    limit, code 9; a container published already, code 506 (duplicate post).

Errors use the Graph shape ``{"error": {"message", "type", "code", "fbtrace_id"}}``;
a token not in ``tokens`` is 190. Fault rule steps: ``"create"`` (a container),
``"patch"``/``"final_patch"`` (the bytes), ``"publish"`` (``media_publish``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from steadypost.testing.apps._app import PlatformApp
from steadypost.testing.apps.tus import parse_int
from steadypost.testing.exchange import BodySink, Done, Fixed
from steadypost.testing.faults import RejectMedia, SlowProcessing
from steadypost.testing.messages import Reply, RequestHead, json_reply

_EDGES = "/media|/media_publish|/content_publishing_limit"
_GRAPH = re.compile(rf"^(?:/v\d+\.\d+)?/(\d{{5,}})({_EDGES})?/?$")
_UPLOAD = re.compile(r"^/ig-api-upload/(?:v\d+\.\d+/)?(\d{5,})/?$")
CONTAINER_LIFETIME_S = 24 * 3600.0


def graph_error(status: int, code: int, message: str, kind: str = "OAuthException") -> Reply:
    body = {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "SimTrace"}}
    return json_reply(status, body)


@dataclass(frozen=True, kw_only=True)
class InstagramConfig:
    """How the simulated Instagram behaves."""

    tokens: frozenset[str] | None = None
    """Accepted access tokens (``None``: any non-empty one)."""
    quota_total: int = 50
    """The 24-hour publishing limit (the official example: 50; older sources say 25)."""
    processing_s: float = 0.0


@dataclass(frozen=True)
class ReelInfo:
    """One container as of the current clock time."""

    container_id: str
    status_code: str
    size: int
    received: int
    sha256: str
    caption: str | None
    media_id: str | None
    publishes: int


@dataclass
class _Container:
    container_id: str
    caption: str | None
    created_at: float
    processing_s: float
    failure: RejectMedia | None
    size: int = 0
    received: int = 0
    completed_at: float | None = None
    media_id: str | None = None
    published_at: float | None = None
    publishes: int = 0

    def status(self, now: float) -> tuple[str, str]:
        if self.media_id is not None:
            return "PUBLISHED", "Published"
        if now >= self.created_at + CONTAINER_LIFETIME_S:
            return "EXPIRED", "Expired: not published within 24 hours"
        if self.completed_at is None or now < self.completed_at + self.processing_s:
            return "IN_PROGRESS", "In Progress"
        if self.failure is not None:
            return "ERROR", f"Error: {self.failure.reason}"
        return "FINISHED", "Finished"


class InstagramApp(PlatformApp[InstagramConfig]):
    """The container, upload, status, limit and publish endpoints."""

    def _begin(self) -> None:
        self._containers: dict[str, _Container] = {}
        self._ids = itertools.count(17_900_000_000_000_001)
        self._media = itertools.count(18_000_000_000_000_001)
        self._published_at: list[float] = []

    @staticmethod
    def handles(path: str) -> bool:
        return bool(_GRAPH.match(path) or _UPLOAD.match(path))

    # --- inspection -----------------------------------------------------------------

    def reels(self) -> list[ReelInfo]:
        """Every container, oldest first."""
        with self._lock:
            now = self._clock()
            return [ReelInfo(c.container_id, c.status(now)[0], c.size, c.received,
                             self.storage.sha256(self._key(c)), c.caption, c.media_id,
                             c.publishes) for c in self._containers.values()]  # fmt: skip

    def published(self) -> list[ReelInfo]:
        """The Reels that were published (each publish of a container counts)."""
        return [r for r in self.reels() if r.media_id is not None]

    @staticmethod
    def _key(container: _Container) -> str:
        return f"instagram-{container.container_id}"

    # --- routing --------------------------------------------------------------------

    def open(self, head: RequestHead) -> BodySink:
        upload = _UPLOAD.match(head.path)
        if upload is not None:
            return self._upload(head, upload.group(1))
        if not self._authorized(head):
            return Fixed(graph_error(400, 190, "Invalid OAuth access token."))
        match = _GRAPH.match(head.path)
        assert match is not None
        node, edge = match.group(1), match.group(2) or ""
        query = {k: v[0] for k, v in parse_qs(head.query).items()}
        if edge == "/media" and head.method == "POST":
            return Fixed(self._create(head, query))
        if edge == "/media_publish" and head.method == "POST":
            return Fixed(self._publish(query.get("creation_id", "")))
        if edge == "/content_publishing_limit" and head.method == "GET":
            return Fixed(self._limit())
        if not edge and head.method == "GET":
            return Fixed(self._status(node))
        return Fixed(graph_error(400, 100, "Unsupported request", "GraphMethodException"))

    def _authorized(self, head: RequestHead, scheme: str = "bearer") -> bool:
        kind, _, token = (head.header("authorization") or "").partition(" ")
        if not token.strip():
            token = parse_qs(head.query).get("access_token", [""])[0]
        elif kind.lower() not in (scheme, "oauth"):
            return False
        allowed = self.config.tokens
        return bool(token.strip()) and (allowed is None or token.strip() in allowed)

    # --- endpoints --------------------------------------------------------------------

    def _create(self, head: RequestHead, query: dict[str, str]) -> Done | Reply:
        if query.get("media_type") != "REELS" or query.get("upload_type") != "resumable":
            return graph_error(400, 100, "media_type=REELS and upload_type=resumable expected")
        with self._lock:
            now = self._clock()
            slow = self._faults.take(SlowProcessing, now)
            container = _Container(
                str(next(self._ids)), query.get("caption"), now,
                slow.seconds if slow else self.config.processing_s,
                self._faults.take(RejectMedia, now),
            )  # fmt: skip
            self._containers[container.container_id] = container
            self.storage.create(self._key(container))
        uri = f"{head.origin}/ig-api-upload/{container.container_id}"
        return Done(json_reply(200, {"id": container.container_id, "uri": uri}), step="create")

    def _upload(self, head: RequestHead, container_id: str) -> BodySink:
        if head.method != "POST":
            return Fixed(graph_error(400, 100, "use POST"))
        if not self._authorized(head, scheme="oauth"):
            return Fixed(graph_error(400, 190, "Invalid OAuth access token."))
        offset, size = parse_int(head.header("offset")), parse_int(head.header("file_size"))
        with self._lock:
            container = self._containers.get(container_id)
            if container is None:
                return Fixed(graph_error(400, 100, "no such container"))
            if offset is None or size is None or size <= 0:
                return Fixed(graph_error(400, 100, "offset and file_size headers are required"))
            if container.completed_at is not None:
                return Fixed(json_reply(200, {"success": True, "message": "Upload successful."}))
            if offset not in (0, container.received):
                return Fixed(graph_error(400, 100, f"offset must be 0 or {container.received}"))
            if offset == 0:
                self.storage.truncate(self._key(container), 0)
                container.received = 0
            container.size = size
            return _Sink(self, container)

    def _status(self, node: str) -> Reply:
        with self._lock:
            container = self._containers.get(node)
            if container is None:
                return graph_error(400, 100, "Unsupported get request", "GraphMethodException")
            code, text = container.status(self._clock())
        return json_reply(200, {"status_code": code, "status": text, "id": node})

    def _recent(self) -> int:
        now = self._clock()
        self._published_at = [t for t in self._published_at if t > now - 86400.0]
        return len(self._published_at)

    def _limit(self) -> Reply:
        with self._lock:
            used = self._recent()
        return json_reply(200, {"data": [{"quota_usage": used, "config": {
            "quota_total": self.config.quota_total, "quota_duration": 86400}}]})  # fmt: skip

    def _publish(self, creation_id: str) -> Done | Reply:
        with self._lock:
            container = self._containers.get(creation_id)
            if container is None:
                return graph_error(400, 100, "no such container")
            code, _ = container.status(self._clock())
            if code == "PUBLISHED":
                return graph_error(400, 506, "Duplicate Post", "OAuthException")
            if code != "FINISHED":
                return graph_error(400, 9007, f"The media is not ready for publishing ({code})")
            if self._recent() >= self.config.quota_total:
                return graph_error(400, 9, "Application request limit reached")
            container.media_id = str(next(self._media))
            container.publishes += 1
            self._published_at.append(self._clock())
            return Done(json_reply(200, {"id": container.media_id}), step="publish")


class _Sink:
    stores_body = True

    def __init__(self, app: InstagramApp, container: _Container) -> None:
        self._app = app
        self._container = container

    def write(self, data: bytes) -> None:
        with self._app._lock:
            c = self._container
            room = c.size - c.received
            if data[:room]:
                self._app.storage.append(InstagramApp._key(c), data[:room])
                c.received += len(data[:room])

    def finish(self) -> Done:
        with self._app._lock:
            c = self._container
            if c.received >= c.size:
                c.completed_at = self._app._clock()
                return Done(json_reply(200, {"success": True, "message": "Upload successful."}),
                            step="patch", final=True)  # fmt: skip
            return Done(graph_error(400, 100, "the body is shorter than file_size"))

    def abandon(self) -> None:
        """A broken upload keeps what arrived (an offset other than 0 must then match it)."""
        return

