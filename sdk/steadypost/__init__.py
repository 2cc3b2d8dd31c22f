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

from __future__ import annotations

import importlib as _importlib
import logging as _logging
import typing as _typing

from steadypost import _lean_imports  # noqa: F401  (before anything imports httpx)

if _typing.TYPE_CHECKING:
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
_logging.getLogger("steadypost").addHandler(_logging.NullHandler())

#: Where each public name lives. They are imported on first use (PEP 562), so
#: ``import steadypost`` (and the CLI's ``steadypost list``) does not load httpx,
#: asyncio and every platform adapter before it needs them.
_LAZY: dict[str, str] = {
    "AsyncUploader": "steadypost.client",
    "Uploader": "steadypost.client",
    "snapshot_file": "steadypost.drivers.files",
    "AuthorizationError": "steadypost.errors",
    "CertificateError": "steadypost.errors",
    "ChecksumMismatchError": "steadypost.errors",
    "ConfigurationError": "steadypost.errors",
    "ConnectFailedError": "steadypost.errors",
    "ConnectionLostError": "steadypost.errors",
    "FileProblemError": "steadypost.errors",
    "HostUnavailableError": "steadypost.errors",
    "IllegalTransitionError": "steadypost.errors",
    "InternalError": "steadypost.errors",
    "JournalCorruptError": "steadypost.errors",
    "JournalError": "steadypost.errors",
    "LeaseHeldError": "steadypost.errors",
    "Outcome": "steadypost.errors",
    "PlatformError": "steadypost.errors",
    "PostExistsError": "steadypost.errors",
    "PostNotFoundError": "steadypost.errors",
    "ProtocolError": "steadypost.errors",
    "RetriesExhaustedError": "steadypost.errors",
    "SchemaTooNewError": "steadypost.errors",
    "StalledError": "steadypost.errors",
    "StatusError": "steadypost.errors",
    "SteadypostError": "steadypost.errors",
    "TransportError": "steadypost.errors",
    "UploadCancelledError": "steadypost.errors",
    "UploadGoneError": "steadypost.errors",
    "UploadStalledError": "steadypost.errors",
    "WireBoundError": "steadypost.errors",
    "BreakerOptions": "steadypost.hosts",
    "BudgetOptions": "steadypost.hosts",
    "HostOptions": "steadypost.hosts",
    "HostRegistry": "steadypost.hosts",
    "StatusPageOptions": "steadypost.hosts.statuspage",
    "StatusPages": "steadypost.hosts.statuspage",
    "AddResult": "steadypost.journal",
    "Journal": "steadypost.journal",
    "PostGroup": "steadypost.lifecycle.group",
    "Target": "steadypost.lifecycle.group",
    "PostOptions": "steadypost.lifecycle.options",
    "FileIdentity": "steadypost.models",
    "JournalEvent": "steadypost.models",
    "Post": "steadypost.models",
    "PostState": "steadypost.models",
    "Progress": "steadypost.models",
    "ProgressKind": "steadypost.models",
    "Timeouts": "steadypost.models",
    "UploadResult": "steadypost.models",
    "TokenRequest": "steadypost.platforms.base",
    "DEFAULT_CHUNK_SIZE": "steadypost.platforms.tus",
    "ServerInfo": "steadypost.platforms.tus",
    "RetryPolicy": "steadypost.policy",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steadypost' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
