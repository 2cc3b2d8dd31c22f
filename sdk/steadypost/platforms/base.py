"""What every platform adapter provides, as flows (generators, no I/O).

A platform knows how to get a post's bytes to it (:meth:`Platform.begin`
returns a :class:`PlatformUpload`: for tus-based platforms a
:class:`~steadypost.platforms.tus.TusUpload`, for TikTok its chunked PUTs),
how to *publish* an uploaded video when publishing is a separate step, how
to *check* a post later (the verification that settles an ``unconfirmed``
post), and what cancelling means on its side.

``check`` answers one of four things (:class:`CheckStatus`):

``PROCESSED``
    The platform has the post: it becomes ``confirmed``.
``PROCESSING``
    Still working on it: checked again later, with growing gaps.
``FAILED``
    The platform refused it; ``retryable`` says whether posting again can help.
``NOT_PROCESSED``
    The platform has no trace of it (or only part of the bytes): it is queued
    again under the same post id, resuming the upload if that still exists.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from steadypost.flow import Flow, RetryContext
from steadypost.models import LocalFile, Post, UploadResult
from steadypost.platforms.tus import ServerInfo


class CheckStatus(str, enum.Enum):
    PROCESSED = "processed"
    PROCESSING = "processing"
    FAILED = "failed"
    NOT_PROCESSED = "not_processed"


@dataclass(frozen=True)
class CheckResult:
    """A platform's answer about one post."""

    status: CheckStatus
    reason: str | None = None
    retryable: bool = False
    detail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """What the platform said, for the journal's evidence."""


@dataclass(frozen=True, kw_only=True)
class UploadJob:
    """Everything a platform needs to upload one claimed post's bytes.

    ``post`` is the journaled post as it is now: its ``upload_url``,
    ``offset``, ``upload_expires_at`` and ``extra`` say where an earlier run
    stopped. ``chunk_size`` is the caller's choice for this upload (``None``:
    the platform's own default, or ``default_chunk_size`` for plain tus).
    """

    post: Post
    file: LocalFile
    retry: RetryContext
    chunk_size: int | None = None
    default_chunk_size: int
    checksum: bool = True
    server_info: ServerInfo | None = None
    """What a tus endpoint advertised earlier in this process (skips ``OPTIONS``)."""
    answered: bool = True
    """Whether the endpoint's origin ever answered like the platform. ``False``: its
    first failure is a :class:`~steadypost.errors.ConfigurationError`, not an outage."""


class PlatformUpload(Protocol):
    """One run of a post's upload: ``run()`` is the flow."""

    file: LocalFile

    def run(self) -> Flow[UploadResult]: ...


@dataclass(frozen=True)
class TokenRequest:
    """What a creator tool's token provider is asked for (see ``Uploader(token_provider=)``).

    ``account`` is the label given to the platform adapter (``""`` unless you
    set one), so a tool with several accounts on one platform can tell them
    apart. Return a currently valid access token (refresh it first if it is
    about to expire), or ``None`` to use the uploader's ``headers``.
    """

    platform: str
    account: str
    endpoint: str


class Platform(Protocol):
    """A platform adapter. ``name`` is stored in the journal with each post."""

    name: str

    def config(self) -> Mapping[str, str]:
        """Settings to journal with a post, so a later run can rebuild the adapter."""
        ...

    def begin(self, job: UploadJob) -> PlatformUpload:
        """The upload of ``job.post``'s bytes, resuming what the journal shows was done."""
        ...

    def cancel(self, post: Post) -> Flow[None] | None:
        """What to ask the platform when the user cancels ``post`` (``None``: nothing)."""
        ...

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        """The publish step after the bytes are up, or ``None`` if there is none."""
        ...

    def check(self, post: Post) -> Flow[CheckResult]:
        """Ask the platform whether ``post`` was processed."""
        ...
