"""An X-shaped platform: chunked media upload (v2, and the v1.1 shape tweepy speaks) and posts.

Served by :class:`~steadypost.testing.PlatformSimulator` beside the others:

``POST /2/media/upload`` (``command`` = ``INIT`` / ``APPEND`` / ``FINALIZE``, as a form
or ``multipart/form-data``) and ``GET /2/media/upload?command=STATUS&media_id=``
    v2 answers in ``{"data": {"id", "media_key", "expires_after_secs",
    "processing_info"}}``. ``APPEND`` takes ``segment_index`` 0-999 and
    ``media`` of at most 5 MB; a segment sent again replaces the earlier one.
    ``FINALIZE`` needs every byte of ``total_bytes``; ``processing_info`` is
    ``in_progress`` for ``processing_s`` (``check_after_secs`` apart), then
    ``succeeded`` (or ``failed`` with ``InvalidMedia`` for media begun while
    ``RejectMedia`` was active). Media expires ``expires_after_s`` after INIT.
``POST /1.1/media/upload.json`` and ``GET /1.1/media/upload.json?command=STATUS``
    the same, in the legacy v1.1 shape (``media_id``, ``media_id_string``).
``POST /2/tweets`` with ``{"text", "media": {"media_ids": [...]}}``
    ``201 {"data": {"id", "text"}}`` for ready media (step ``"publish"``).
``GET /2/users/me``, ``GET /2/users/{id}/tweets``
    the account and its recent posts, newest first, with ``attachments.media_keys``.

Any non-empty ``Authorization`` is accepted unless ``tokens`` is set (then 401).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from steadypost.testing.apps._app import PlatformApp
from steadypost.testing.exchange import BodySink, Buffered, Done, Fixed
from steadypost.testing.faults import RejectMedia, SlowProcessing
from steadypost.testing.messages import Reply, RequestHead, json_reply

V2_MEDIA = "/2/media/upload"
V1_MEDIA = "/1.1/media/upload.json"
TWEETS = "/2/tweets"
USER_ID = "1700000000000000001"
MAX_SEGMENT = 5 * 1024 * 1024
_MAX_BODY = MAX_SEGMENT + (1 << 16)


@dataclass(frozen=True, kw_only=True)
class XConfig:
    """How the simulated X behaves; undocumented parts are marked so."""

    tokens: frozenset[str] | None = None
    processing_s: float = 0.0
    check_after_secs: int = 5
    expires_after_s: float = 86400.0
    """Undocumented for video here; the v2 quickstart's example says about 15 days."""


@dataclass
class _Media:
    media_id: str
    total: int
    created_at: float
    processing_s: float
    failure: RejectMedia | None
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized_at: float | None = None

    @property
    def key(self) -> str:
        return f"7_{self.media_id}"

    def info(self, now: float, check_after: int) -> dict[str, Any] | None:
        if self.finalized_at is None:
            return None
        if now < self.finalized_at + self.processing_s:
            left = self.finalized_at + self.processing_s - now
            return {"state": "in_progress", "check_after_secs": max(1, min(check_after,
                                                                          int(left) + 1))}
        if self.failure is not None:
            return {"state": "failed", "error": {"code": 1, "name": "InvalidMedia",
                                                 "message": self.failure.reason}}
        return {"state": "succeeded", "progress_percent": 100}


@dataclass(frozen=True)
class XPostInfo:
    post_id: str
    text: str
    media_keys: tuple[str, ...]
    sha256: str
    created_at: float


def x_error(status: int, title: str, detail: str = "") -> Reply:
    return json_reply(status, {"title": title, "detail": detail or title, "status": status,
                               "errors": [{"message": detail or title}]})  # fmt: skip


class XApp(PlatformApp[XConfig]):
    """Media upload (v2 and v1.1), posts, and the account's recent posts."""

    def _begin(self) -> None:
        self._media: dict[str, _Media] = {}
        self._posts: list[tuple[XPostInfo, str]] = []
        self._ids = itertools.count(1_880_000_000_000_000_001)

    @staticmethod
    def handles(path: str) -> bool:
        return path in (V2_MEDIA, V1_MEDIA, TWEETS) or path.startswith("/2/users/")

    def posts(self) -> list[XPostInfo]:
        """Every post created, oldest first."""
        with self._lock:
            return [p for p, _ in self._posts]

    def media_bytes(self, media_id: str) -> bytes:
        with self._lock:
            media = self._media[media_id]
            return b"".join(media.segments[i] for i in sorted(media.segments))

    # --- routing --------------------------------------------------------------------

    def open(self, head: RequestHead) -> BodySink:
        token = (head.header("authorization") or "").partition(" ")[2].strip()
        allowed = self.config.tokens
        if not token or (allowed is not None and token not in allowed
                         and not head.path.startswith("/1.1/")):  # fmt: skip
            return Fixed(x_error(401, "Unauthorized", "Unauthorized"))
        if head.path in (V2_MEDIA, V1_MEDIA):
            if head.method == "GET":
                return Fixed(self._status(head, parse_qs(head.query)))
            return Buffered(lambda body: self._media_command(head, body), limit=_MAX_BODY)
        if head.path == TWEETS and head.method == "POST":
            return Buffered(self._create, limit=1 << 20)
        if head.path == "/2/users/me":
            return Fixed(json_reply(200, {"data": {"id": USER_ID, "username": "sim"}}))
        if head.path == f"/2/users/{USER_ID}/tweets":
            return Fixed(self._timeline(parse_qs(head.query)))
        return Fixed(x_error(404, "Not Found"))

    # --- media ------------------------------------------------------------------------

    def _media_command(self, head: RequestHead, body: bytes) -> Done:
        fields, media = _form(head, body)
        v1 = head.path == V1_MEDIA
        command = fields.get("command", "")
        with self._lock:
            now = self._clock()
            if command == "INIT":
                total = fields.get("total_bytes", "")
                if not total.isdigit() or int(total) <= 0:
                    return Done(x_error(400, "Invalid Request", "total_bytes is required"))
                slow = self._faults.take(SlowProcessing, now)
                made = _Media(str(next(self._ids)), int(total), now,
                              slow.seconds if slow else self.config.processing_s,
                              self._faults.take(RejectMedia, now))  # fmt: skip
                self._media[made.media_id] = made
                return Done(self._answer(made, v1, now), step="create")
            item = self._media.get(fields.get("media_id", ""))
            if item is None or now >= item.created_at + self.config.expires_after_s:
                return Done(x_error(400, "Invalid Request", "media_id is unknown or expired"))
            if command == "APPEND":
                index = fields.get("segment_index", "")
                if not index.isdigit() or int(index) > 999 or media is None:
                    return Done(x_error(400, "Invalid Request", "segment_index and media"))
                if len(media) > MAX_SEGMENT or item.finalized_at is not None:
                    return Done(x_error(400, "Invalid Request", "segment too large or finalized"))
                item.segments[int(index)] = media
                return Done(Reply(204) if v1 else json_reply(200, {"data": {
                    "expires_at": int(item.created_at + self.config.expires_after_s)}}),
                    step="patch")  # fmt: skip
            if command == "FINALIZE":
                if item.finalized_at is None:
                    if sum(len(s) for s in item.segments.values()) != item.total:
                        return Done(x_error(400, "Invalid Request",
                                            "the segments do not add up to total_bytes"))
                    item.finalized_at = now
                return Done(self._answer(item, v1, now), step="patch", final=True)
        return Done(x_error(400, "Invalid Request", f"unknown command {command!r}"))

    def _answer(self, item: _Media, v1: bool, now: float) -> Reply:
        info = item.info(now, self.config.check_after_secs)
        life = int(item.created_at + self.config.expires_after_s - now)
        if v1:
            body: dict[str, Any] = {"media_id": int(item.media_id),
                                    "media_id_string": item.media_id, "media_key": item.key,
                                    "size": item.total, "expires_after_secs": life}  # fmt: skip
            if info is not None:
                body["processing_info"] = info
            return json_reply(202 if info and info["state"] == "in_progress" else 200, body)
        data: dict[str, Any] = {"id": item.media_id, "media_key": item.key,
                                "expires_after_secs": life}  # fmt: skip
        if info is not None:
            data["processing_info"] = info
        return json_reply(200, {"data": data})

    def _status(self, head: RequestHead, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            item = self._media.get((query.get("media_id") or [""])[0])
            if (query.get("command") or [""])[0] != "STATUS" or item is None:
                return x_error(400, "Invalid Request", "command=STATUS&media_id= expected")
            return self._answer(item, head.path == V1_MEDIA, self._clock())

    # --- posts --------------------------------------------------------------------------

    def _create(self, body: bytes) -> Done:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return Done(x_error(400, "Invalid Request", "the body is not JSON"))
        ids = ((request.get("media") or {}).get("media_ids") or []) if isinstance(
            request, dict) else []  # fmt: skip
        with self._lock:
            now = self._clock()
            keys, digest = [], ""
            for media_id in ids:
                item = self._media.get(str(media_id))
                info = item.info(now, 1) if item is not None else None
                if item is None or info is None or info["state"] != "succeeded":
                    return Done(x_error(400, "Invalid Request", "media is not ready"))
                keys.append(item.key)
                self.storage.create(f"x-{item.media_id}")
                self.storage.truncate(f"x-{item.media_id}", 0)
                self.storage.append(f"x-{item.media_id}", self.media_bytes(item.media_id))
                digest = self.storage.sha256(f"x-{item.media_id}")
            post = XPostInfo(str(next(self._ids)), str(request.get("text") or ""), tuple(keys),
                             digest, now)  # fmt: skip
            self._posts.append((post, USER_ID))
        return Done(json_reply(201, {"data": {"id": post.post_id, "text": post.text}}),
                    step="publish")  # fmt: skip

    def _timeline(self, query: dict[str, list[str]]) -> Reply:
        count = int((query.get("max_results") or ["10"])[0] or 10)
        with self._lock:
            recent = [p for p, _ in self._posts][::-1][:count]
        data = [{"id": p.post_id, "text": p.text,
                 "attachments": {"media_keys": list(p.media_keys)}} for p in recent]
        return json_reply(200, {"data": data, "meta": {"result_count": len(data)}})


def _form(head: RequestHead, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """The fields of a form, a multipart form (and its ``media`` part), or the query."""
    fields = {k: v[0] for k, v in parse_qs(head.query).items()}
    kind = head.header("content-type") or ""
    if kind.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + body)  # fmt: skip
        media = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            if name == "media":
                media = payload
            elif isinstance(name, str):
                fields[name] = payload.decode("utf-8", "replace")
        return fields, media
    fields.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    return fields, None
