"""A Vimeo-shaped platform: ``POST /me/videos`` (tus approach), tus upload links, transcoding.

Served by :class:`~steadypost.testing.PlatformSimulator` beside tus, as
Vimeo's upload documentation describes it:

``POST /me/videos`` with ``{"upload": {"approach": "tus", "size": N}}``
    makes a video and, server-side, its tus upload; answers ``200`` with the
    video's ``uri`` (``/videos/{id}``), ``link`` and ``upload`` (``status``,
    ``upload_link``, ``approach``, ``size``). Any other approach is ``400``.
``{upload_link}``
    the simulator's tus server (``HEAD`` / ``PATCH``; no creation needed).
``GET /videos/{id}`` (``?fields=`` honoured for dotted names)
    ``upload.status`` is ``in_progress`` until every byte arrived, then
    ``complete``; ``transcode.status`` is ``in_progress`` until
    ``processing_s`` after that, then ``complete`` (or ``error`` for a video
    made while a ``RejectMedia`` rule was active).

Errors use Vimeo's shape ``{"error", "developer_message", "error_code"}``;
with ``require_authorization`` set, a different ``Authorization`` gets 401.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from steadypost.testing.apps.tus import TusApp, other_origin_of
from steadypost.testing.exchange import BodySink, Buffered, Done, Fixed
from steadypost.testing.faults import Faults, RejectMedia, SlowProcessing
from steadypost.testing.messages import Reply, RequestHead, json_reply

UploadStatus = Literal["in_progress", "complete"]
TranscodeStatus = Literal["in_progress", "complete", "error"]
CREATE_PATH = "/me/videos"
VIDEOS_PREFIX = "/videos/"
_MAX_BODY = 1 << 20


@dataclass(frozen=True, kw_only=True)
class VimeoConfig:
    """How the simulated Vimeo behaves."""

    require_authorization: str | None = None
    """The exact ``Authorization`` value the API needs (``None``: any, or none)."""
    upload_origin: str | None = None
    """Origin of upload links (``None``: another origin than the API's, as on Vimeo:
    the other loopback name of the one the request used, see ``other_origin_of``)."""
    processing_s: float = 0.0
    """Clock seconds of transcoding after the last byte."""


@dataclass(frozen=True)
class VimeoVideoInfo:
    """One video and where it stands at the current clock time."""

    video_id: str
    uri: str
    upload_id: str
    upload_link: str
    size: int
    upload_status: UploadStatus
    transcode_status: TranscodeStatus
    name: str | None
    created_at: float
    sha256: str


@dataclass(frozen=True)
class _Video:
    video_id: str
    upload_id: str
    upload_link: str
    size: int
    name: str | None
    created_at: float
    processing_s: float
    failure: RejectMedia | None


def vimeo_error(status: int, message: str, code: int = 0) -> Reply:
    body = {"error": message, "developer_message": message, "error_code": code}
    return json_reply(status, body)


class VimeoApp:
    """``/me/videos`` and ``/videos/{id}``, with the uploads kept by the :class:`TusApp`."""

    def __init__(
        self, config: VimeoConfig, tus: TusApp, *, faults: Faults,
        clock: Callable[[], float], lock: threading.RLock,
    ) -> None:  # fmt: skip
        self.config = config
        self._tus = tus
        self._faults = faults
        self._clock = clock
        self._lock = lock
        self._videos: dict[str, _Video] = {}
        self._ids = itertools.count(100_000_001)

    @staticmethod
    def handles(path: str) -> bool:
        return path.rstrip("/") == CREATE_PATH or path.startswith(VIDEOS_PREFIX)

    def videos(self) -> list[VimeoVideoInfo]:
        """Every video made so far, oldest first."""
        with self._lock:
            return [self._info(v) for v in self._videos.values()]

    def open(self, head: RequestHead) -> BodySink:
        wanted = self.config.require_authorization
        if wanted is not None and head.header("authorization") != wanted:
            return Fixed(vimeo_error(401, "You must provide a valid authenticated access token.",
                                     8003))  # fmt: skip
        if head.path.rstrip("/") == CREATE_PATH:
            if head.method != "POST":
                return Fixed(vimeo_error(405, "Method not allowed"))
            return Buffered(lambda body: self._create(head, body), limit=_MAX_BODY)
        if head.method != "GET":
            return Fixed(vimeo_error(405, "Method not allowed"))
        video_id = head.path[len(VIDEOS_PREFIX):].strip("/")
        with self._lock:
            video = self._videos.get(video_id)
            if video is None:
                return Fixed(vimeo_error(404, "The requested video couldn't be found.", 5000))
            fields = (parse_qs(head.query).get("fields") or [""])[0]
            return Fixed(json_reply(200, _only(self._body(video), fields)))

    def _create(self, head: RequestHead, body: bytes) -> Done:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return Done(vimeo_error(400, "The body is not JSON", 2204))
        upload = request.get("upload") if isinstance(request, dict) else None
        if not isinstance(upload, dict) or upload.get("approach") != "tus":
            return Done(vimeo_error(400, 'upload.approach must be "tus" here', 2204))
        try:
            size = int(upload["size"])
        except (KeyError, TypeError, ValueError):
            return Done(vimeo_error(400, "upload.size is required", 2204))
        if size <= 0:
            return Done(vimeo_error(400, "upload.size must be positive", 2204))
        name = request.get("name") if isinstance(request.get("name"), str) else None
        with self._lock:
            now = self._clock()
            video_id = str(next(self._ids))
            origin = self.config.upload_origin or other_origin_of(head.origin)
            link = self._tus.create_upload(size, {"vimeo_video": video_id}, origin)
            slow = self._faults.take(SlowProcessing, now)
            video = _Video(
                video_id, link.rsplit("/", 1)[-1], link, size, name, now,
                slow.seconds if slow else self.config.processing_s,
                self._faults.take(RejectMedia, now),
            )  # fmt: skip
            self._videos[video_id] = video
            answer = self._body(video)
        return Done(json_reply(200, answer), step="create")

    def _state(self, video: _Video) -> tuple[UploadStatus, TranscodeStatus, str]:
        info = self._tus.infos().get(video.upload_id)
        if info is None or not info.completed:
            return "in_progress", "in_progress", info.sha256 if info else ""
        if self._clock() < info.touched_at + video.processing_s:
            return "complete", "in_progress", info.sha256
        return "complete", ("error" if video.failure else "complete"), info.sha256

    def _body(self, video: _Video) -> dict[str, Any]:
        upload, transcode, _ = self._state(video)
        return {
            "uri": f"/videos/{video.video_id}", "name": video.name,
            "link": f"https://vimeo.sim/{video.video_id}",
            "upload": {"status": upload, "upload_link": video.upload_link, "approach": "tus",
                       "size": video.size},
            "transcode": {"status": transcode},
        }  # fmt: skip

    def _info(self, video: _Video) -> VimeoVideoInfo:
        upload, transcode, sha = self._state(video)
        return VimeoVideoInfo(
            video.video_id, f"/videos/{video.video_id}", video.upload_id, video.upload_link,
            video.size, upload, transcode, video.name, video.created_at, sha,
        )


def _only(body: Mapping[str, Any], fields: str) -> dict[str, Any]:
    """Vimeo's ``fields`` filter: keep only the dotted names listed (all when empty)."""
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    if not wanted:
        return dict(body)
    out: dict[str, Any] = {}
    for name in wanted:
        source: Any = body
        target = out
        parts = name.split(".")
        for part in parts[:-1]:
            source = source.get(part) if isinstance(source, dict) else None
            target = target.setdefault(part, {})
        if isinstance(source, dict) and parts[-1] in source:
            target[parts[-1]] = source[parts[-1]]
    return out
