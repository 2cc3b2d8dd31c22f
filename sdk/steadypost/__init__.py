"""steadypost: get a creator's video posted exactly once, even while the platform fails.

Resumable tus uploads that continue from the server's offset after any failure,
polite retries (full-jitter backoff, ``Retry-After`` obeyed), and clear errors
that say whether a failed request may still have been processed.

Quick start::

    from steadypost import Uploader

    with Uploader(headers={"Authorization": "Bearer ..."}) as up:
        result = up.upload("clip.mp4", "https://uploads.example.com/files/",
                           metadata={"caption": "hello"},
                           on_progress=lambda p: print(p.acknowledged, "/", p.total))
    print(result.upload_url, result.sha256)

The asyncio twin is :class:`AsyncUploader`. Every error is a
:class:`SteadypostError`; its ``outcome`` is ``NOT_DELIVERED`` (safe to try
again), ``AMBIGUOUS`` (may have been processed: verify before resending) or
``REJECTED`` (a retry will not help).
"""

import logging

from steadypost import _lean_imports  # noqa: F401  (before anything imports httpx)
from steadypost.client import AsyncUploader, Uploader
from steadypost.drivers.files import snapshot_file
from steadypost.errors import (
    AuthorizationError,
    CertificateError,
    ChecksumMismatchError,
    ConfigurationError,
    ConnectFailedError,
    ConnectionLostError,
    FileProblemError,
    HostUnavailableError,
    IllegalTransitionError,
    InternalError,
    JournalCorruptError,
    JournalError,
    LeaseHeldError,
    Outcome,
    PlatformError,
    PostExistsError,
    PostNotFoundError,
    ProtocolError,
    RetriesExhaustedError,
    SchemaTooNewError,
    StalledError,
    StatusError,
    SteadypostError,
    TransportError,
    UploadCancelledError,
    UploadGoneError,
    UploadStalledError,
    WireBoundError,
)
from steadypost.hosts import BreakerOptions, BudgetOptions, HostOptions, HostRegistry
from steadypost.hosts.statuspage import StatusPageOptions, StatusPages
from steadypost.journal import AddResult, Journal
from steadypost.lifecycle.group import PostGroup, Target
from steadypost.lifecycle.options import PostOptions
from steadypost.models import (
    FileIdentity,
    JournalEvent,
    Post,
    PostState,
    Progress,
    ProgressKind,
    Timeouts,
    UploadResult,
)
from steadypost.platforms.base import TokenRequest
from steadypost.platforms.tus import DEFAULT_CHUNK_SIZE, ServerInfo
from steadypost.policy import RetryPolicy

__version__ = "0.1.0"

# A library logs; the application decides where the lines go.
logging.getLogger("steadypost").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AddResult",
    "AsyncUploader",
    "AuthorizationError",
    "BreakerOptions",
    "BudgetOptions",
    "CertificateError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConnectFailedError",
    "ConnectionLostError",
    "FileIdentity",
    "FileProblemError",
    "HostOptions",
    "HostRegistry",
    "HostUnavailableError",
    "IllegalTransitionError",
    "InternalError",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalEvent",
    "LeaseHeldError",
    "Outcome",
    "PlatformError",
    "Post",
    "PostExistsError",
    "PostGroup",
    "PostNotFoundError",
    "PostOptions",
    "PostState",
    "Progress",
    "ProgressKind",
    "ProtocolError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SchemaTooNewError",
    "ServerInfo",
    "StalledError",
    "StatusError",
    "StatusPageOptions",
    "StatusPages",
    "SteadypostError",
    "Target",
    "Timeouts",
    "TokenRequest",
    "TransportError",
    "UploadCancelledError",
    "UploadGoneError",
    "UploadResult",
    "UploadStalledError",
    "Uploader",
    "WireBoundError",
    "snapshot_file",
]
