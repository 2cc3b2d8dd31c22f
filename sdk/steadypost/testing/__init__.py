"""Rehearse a platform outage in your own tests: a fake platform with fault injection.

:class:`PlatformSimulator` is a tus 1.0.0 upload server plus a small post API
(publish, then check status) whose misbehaviour you script with fault rules,
on a :class:`FakeClock` that your client shares, so a 30-minute outage takes
microseconds. It needs nothing but httpx, and serves requests in process
(``sim.transport()``) or on 127.0.0.1 (:class:`SimulatorServer`)::

    import httpx
    from steadypost import Uploader
    from steadypost.testing import FakeClock, Outage, PlatformSimulator

    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, faults=[        # down for 30 minutes
        Outage(clock.now(), clock.now() + 1800, retry_after=600)])
    client = httpx.Client(transport=sim.transport(), base_url="https://platform.test")
    with Uploader(client=client, sleep=clock.sleep, clock=clock.now) as uploader:
        result = uploader.upload("clip.mp4", "https://platform.test/files")
    client.post("/posts", json={"upload_url": result.upload_url}, headers={"Idempotency-Key": "p1"})
    assert sim.published_copies("p1") == 1                # posted exactly once
    assert len([r for r in sim.requests if r.fault]) <= 4  # and it did not hammer the server

It also plays TikTok's Content Posting API, Vimeo's upload API, YouTube's
resumable upload (``sim.tiktok``, ``sim.vimeo``, ``sim.youtube``; see
:mod:`steadypost.testing.apps.tiktok`, :mod:`~steadypost.testing.apps.vimeo` and
:mod:`~steadypost.testing.apps.youtube`), with the same fault rules.

Fault rules (see :mod:`steadypost.testing.faults`): :class:`Outage`,
:class:`Respond`, :class:`ResetMidChunk`, :class:`ProcessedButError`,
:class:`ProcessedButTimeout`, :class:`BadUploadOffset`,
:class:`SlowProcessing`, :class:`RejectMedia`. Inspect what happened with
``sim.uploads``, ``sim.posts`` / ``sim.published`` and ``sim.requests``.

For wire-level hostility on real sockets (an answer dripped one byte a second,
never answered, cut, reset, garbage; a tus server that acknowledges nothing or
lies), see :class:`HostileServer` (:mod:`steadypost.testing.hostile`) and its
named behaviours, :data:`HOSTILE_BEHAVIOURS`.
"""

from steadypost.testing.apps.instagram import InstagramApp, InstagramConfig, ReelInfo
from steadypost.testing.apps.tiktok import TikTokApp, TikTokConfig, tiktok_fault
from steadypost.testing.apps.tiktok_upload import ChunkAnswers, TikTokPublishInfo
from steadypost.testing.apps.tus import (
    DEFAULT_CHECKSUM_ALGORITHMS,
    DEFAULT_EXPIRE_AFTER_S,
    DEFAULT_EXTENSIONS,
    DEFAULT_MAX_SIZE,
    TusApp,
    TusConfig,
)
from steadypost.testing.apps.vimeo import VimeoApp, VimeoConfig, VimeoVideoInfo
from steadypost.testing.apps.x import XApp, XConfig, XPostInfo
from steadypost.testing.apps.youtube import YouTubeApp, YouTubeConfig, youtube_fault
from steadypost.testing.apps.youtube_upload import YouTubeVideoInfo
from steadypost.testing.clock import FakeClock
from steadypost.testing.faults import (
    DEFAULT_HOLD_S,
    DEFAULT_REJECT_REASON,
    STEPS,
    BadUploadOffset,
    Fault,
    Faults,
    Outage,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    ResetMidChunk,
    Respond,
    SlowProcessing,
)
from steadypost.testing.hostile import BEHAVIOURS as HOSTILE_BEHAVIOURS
from steadypost.testing.hostile import HostileServer
from steadypost.testing.httpx_transport import SimTransport
from steadypost.testing.messages import HTML_ERROR_PAGE, http_date
from steadypost.testing.records import PostInfo, RequestRecord, UploadInfo
from steadypost.testing.scripted import Exchange, ScriptedRun, pump
from steadypost.testing.server import SimulatorServer
from steadypost.testing.simulator import DEFAULT_PROCESSING_S, PlatformSimulator
from steadypost.testing.storage import DirectoryStorage, MemoryStorage, UploadStorage

__all__ = [
    "DEFAULT_CHECKSUM_ALGORITHMS",
    "DEFAULT_EXPIRE_AFTER_S",
    "DEFAULT_EXTENSIONS",
    "DEFAULT_HOLD_S",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_PROCESSING_S",
    "DEFAULT_REJECT_REASON",
    "HOSTILE_BEHAVIOURS",
    "HTML_ERROR_PAGE",
    "STEPS",
    "BadUploadOffset",
    "ChunkAnswers",
    "DirectoryStorage",
    "Exchange",
    "FakeClock",
    "Fault",
    "Faults",
    "HostileServer",
    "InstagramApp",
    "InstagramConfig",
    "MemoryStorage",
    "Outage",
    "PlatformSimulator",
    "PostInfo",
    "ProcessedButError",
    "ProcessedButTimeout",
    "ReelInfo",
    "RejectMedia",
    "RequestRecord",
    "ResetMidChunk",
    "Respond",
    "ScriptedRun",
    "SimTransport",
    "SimulatorServer",
    "SlowProcessing",
    "TikTokApp",
    "TikTokConfig",
    "TikTokPublishInfo",
    "TusApp",
    "TusConfig",
    "UploadInfo",
    "UploadStorage",
    "VimeoApp",
    "VimeoConfig",
    "VimeoVideoInfo",
    "XApp",
    "XConfig",
    "XPostInfo",
    "YouTubeApp",
    "YouTubeConfig",
    "YouTubeVideoInfo",
    "http_date",
    "pump",
    "tiktok_fault",
    "youtube_fault",
]
