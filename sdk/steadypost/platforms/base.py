"""What every platform adapter provides, as flows (generators, no I/O).

A platform knows how to get a post's bytes to it (for tus-based platforms:
:class:`~steadypost.platforms.tus.TusUpload`), how to *publish* an uploaded
video when publishing is a separate step, and how to *check* a post later:
the verification that settles an ``unconfirmed`` post.

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

from ..flow import Flow
from ..models import Post


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


class Platform(Protocol):
    """A platform adapter. ``name`` is stored in the journal with each post."""

    name: str

    def config(self) -> Mapping[str, str]:
        """Settings to journal with a post, so a later run can rebuild the adapter."""
        ...

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        """The publish step after the bytes are up, or ``None`` if there is none."""
        ...

    def check(self, post: Post) -> Flow[CheckResult]:
        """Ask the platform whether ``post`` was processed."""
        ...
