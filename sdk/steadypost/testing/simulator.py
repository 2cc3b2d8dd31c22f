"""``PlatformSimulator``: a fake video platform to rehearse outages against.

It speaks tus 1.0.0 at ``/files`` and has a small post API at ``/posts`` (see
:mod:`steadypost.testing.apps.posts`). Beside them it plays TikTok's Content
Posting API (:mod:`steadypost.testing.apps.tiktok`, at ``/v2/post/publish/...``
with upload URLs at ``/video/``) and Vimeo's upload API
(:mod:`steadypost.testing.apps.vimeo`, ``/me/videos`` and ``/videos/{id}``); point
a TikTok or Vimeo post's endpoint at the simulator's base URL. Reach it in process with
:meth:`PlatformSimulator.transport` (no sockets) or over real HTTP with
:class:`~steadypost.testing.SimulatorServer`. Time comes from a shared
:class:`~steadypost.testing.FakeClock`, so a test can jump over a 30-minute
outage at once; misbehaviour comes from :mod:`fault rules
<steadypost.testing.faults>`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from steadypost.testing.apps.instagram import InstagramApp, InstagramConfig
from steadypost.testing.apps.posts import PostApp
from steadypost.testing.apps.tiktok import TikTokApp, TikTokConfig
from steadypost.testing.apps.tus import (
    DEFAULT_CHECKSUM_ALGORITHMS,
    DEFAULT_EXPIRE_AFTER_S,
    DEFAULT_EXTENSIONS,
    DEFAULT_MAX_SIZE,
    LocationStyle,
    TusApp,
    TusConfig,
)
from steadypost.testing.apps.vimeo import VimeoApp, VimeoConfig
from steadypost.testing.apps.x import XApp, XConfig
from steadypost.testing.apps.youtube import YouTubeApp, YouTubeConfig
from steadypost.testing.clock import FakeClock
from steadypost.testing.exchange import BodySink, Exchange, Fixed
from steadypost.testing.faults import Fault, Faults, RejectMedia
from steadypost.testing.httpx_transport import SimTransport
from steadypost.testing.messages import RequestHead, error_reply
from steadypost.testing.records import PostInfo, RequestRecord, UploadInfo
from steadypost.testing.storage import DirectoryStorage, MemoryStorage

#: Seconds a published video stays ``processing`` unless told otherwise.
DEFAULT_PROCESSING_S = 0.0


class PlatformSimulator:
    """A fake platform: tus uploads, publishing, status checks, and injected faults.

    Options (all keyword-only):

    ``clock``
        The :class:`FakeClock` shared with your client (a new one by default,
        available as ``sim.clock``).
    ``faults``
        Fault rules, or a :class:`Faults` to share; change later via ``sim.faults``.
    ``storage_dir``
        Keep upload bytes in files there instead of in memory.
    ``extensions`` / ``checksum_algorithms`` / ``max_size``
        What ``OPTIONS`` advertises and the server enforces; pass fewer to
        rehearse a limited server (``max_size=None`` sends no ``Tus-Max-Size``).
    ``expire_after_s``
        Unfinished uploads answer ``410 Gone`` this long after their last activity.
    ``location``
        ``"absolute"`` (``{origin}/files/{id}``), ``"relative"`` (``/files/{id}``)
        or ``"other-origin"`` (``other_origin``, by default the same port on
        ``localhost`` / ``127.0.0.1``, whichever the client did not use).
    ``processing_s``
        Clock seconds a publish stays ``processing``.
    ``ignore_idempotency``
        Publish a new copy for every ``POST /posts``, key or not.
    ``reject_media``
        Shorthand for the rule ``RejectMedia()``: every publish ends ``failed``.
    ``require_authorization``
        When set, creating uploads and the post API need exactly this
        ``Authorization`` value (else 401). Upload URLs never need it, as with
        the capability URLs of real upload CDNs.
    ``tiktok`` / ``vimeo`` / ``youtube`` / ``instagram`` / ``x``
        A :class:`~steadypost.testing.TikTokConfig`, ``VimeoConfig``,
        ``YouTubeConfig``, ``InstagramConfig`` or ``XConfig`` (defaults: as
        documented). Inspect them with ``sim.tiktok``, ``sim.vimeo``, ``sim.youtube``,
        ``sim.instagram`` and ``sim.x``.
    """

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        faults: Iterable[Fault] | Faults = (),
        storage_dir: Path | None = None,
        extensions: Collection[str] = DEFAULT_EXTENSIONS,
        checksum_algorithms: Collection[str] = DEFAULT_CHECKSUM_ALGORITHMS,
        max_size: int | None = DEFAULT_MAX_SIZE,
        expire_after_s: float = DEFAULT_EXPIRE_AFTER_S,
        location: LocationStyle = "absolute",
        other_origin: str | None = None,
        processing_s: float = DEFAULT_PROCESSING_S,
        ignore_idempotency: bool = False,
        reject_media: bool = False,
        require_authorization: str | None = None,
        tiktok: TikTokConfig | None = None,
        vimeo: VimeoConfig | None = None,
        youtube: YouTubeConfig | None = None,
        instagram: InstagramConfig | None = None,
        x: XConfig | None = None,
    ) -> None:
        self.clock = clock if clock is not None else FakeClock()
        self.faults = faults if isinstance(faults, Faults) else Faults(faults)
        if reject_media:
            self.faults.add(RejectMedia())
        self._lock = threading.RLock()
        self._requests: list[RequestRecord] = []
        config = TusConfig(
            extensions=tuple(extensions),
            checksum_algorithms=tuple(a.lower() for a in checksum_algorithms),
            max_size=max_size,
            expire_after_s=expire_after_s,
            location=location,
            other_origin=other_origin,
            require_authorization=require_authorization,
        )
        storage = DirectoryStorage(storage_dir) if storage_dir is not None else MemoryStorage()
        self.tus = TusApp(config, storage, clock=self.clock.now, lock=self._lock)
        self.post_api = PostApp(
            tus=self.tus,
            faults=self.faults,
            clock=self.clock.now,
            lock=self._lock,
            processing_s=processing_s,
            ignore_idempotency=ignore_idempotency,
            require_authorization=require_authorization,
        )
        self.tiktok = TikTokApp(
            tiktok or TikTokConfig(), storage, faults=self.faults, clock=self.clock.now,
            lock=self._lock,
        )  # fmt: skip
        self.vimeo = VimeoApp(
            vimeo or VimeoConfig(), self.tus, faults=self.faults, clock=self.clock.now,
            lock=self._lock,
        )  # fmt: skip
        self.youtube = YouTubeApp(youtube or YouTubeConfig(), storage, faults=self.faults,
                                  clock=self.clock.now, lock=self._lock)  # fmt: skip
        self.x = XApp(x or XConfig(), storage, faults=self.faults, clock=self.clock.now,
                      lock=self._lock)
        self.instagram = InstagramApp(instagram or InstagramConfig(), storage, faults=self.faults,
                                      clock=self.clock.now, lock=self._lock)  # fmt: skip

    # --- ways in --------------------------------------------------------------------

    def transport(self) -> SimTransport:
        """An httpx transport that talks to this simulator without sockets.

        ``httpx.Client(transport=sim.transport(), base_url="https://platform.test")``;
        any host name works. The same object also serves ``httpx.AsyncClient``.
        """
        return SimTransport(self)

    def async_transport(self) -> SimTransport:
        """The same transport, for ``httpx.AsyncClient(transport=...)``."""
        return SimTransport(self)

    def exchange(self, head: RequestHead) -> Exchange:
        """Begin one request (used by the transports; see :mod:`.exchange`)."""
        return Exchange(
            head, faults=self.faults, clock=self.clock.now, route=self._route, record=self._record
        )

    def _route(self, head: RequestHead) -> BodySink:
        if self.tus.handles(head.path):
            return self.tus.open(head)
        if self.post_api.handles(head.path):
            return self.post_api.open(head)
        if self.tiktok.handles(head.path):
            return self.tiktok.open(head)
        if self.vimeo.handles(head.path):
            return self.vimeo.open(head)
        if self.youtube.handles(head.path):
            return self.youtube.open(head)
        if self.x.handles(head.path):
            return self.x.open(head)
        if self.instagram.handles(head.path):
            return self.instagram.open(head)
        return Fixed(error_reply(404, "no such resource"))

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # --- inspection ---------------------------------------------------------------------

    @property
    def uploads(self) -> Mapping[str, UploadInfo]:
        """Every upload by id (expired and terminated ones included, marked ``gone``)."""
        return self.tus.infos()

    def upload_bytes(self, upload_id: str) -> bytes:
        """The bytes the server holds for an upload (empty once it is gone)."""
        return self.tus.read(upload_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def posts(self) -> list[PostInfo]:
        """Every accepted publish, including failed ones, oldest first."""
        return self.post_api.infos()

    @property
    def published(self) -> list[PostInfo]:
        """The copies that are or will be live: accepted and not failed.

        A post still ``processing`` counts: it goes live with no further request.
        """
        return [post for post in self.posts if post.status in ("processing", "processed")]

    def published_copies(self, idempotency_key: str) -> int:
        """How many live (or soon live) copies were published under that key.

        Exactly-once means ``== 1``.
        """
        return sum(1 for post in self.published if post.idempotency_key == idempotency_key)
