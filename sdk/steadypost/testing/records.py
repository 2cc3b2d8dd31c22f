"""What a test can inspect after the fact: frozen snapshots of the simulator's state.

``sim.uploads`` maps upload ids to :class:`UploadInfo`; ``sim.posts`` and
``sim.published`` list :class:`PostInfo`; ``sim.requests`` is a log of
:class:`RequestRecord`, e.g. to assert that ``Authorization`` never reached
another origin::

    assert all("authorization" not in r.headers for r in sim.requests if r.method == "PATCH")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

PostStatus = Literal["processing", "processed", "failed", "not_found"]
Gone = Literal["expired", "terminated"]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class UploadInfo:
    """One tus upload as the server sees it.

    ``sha256`` is the hex digest of the bytes stored so far; ``completed`` is
    ``offset == length``; ``gone`` is ``"expired"`` or ``"terminated"`` once
    the upload no longer exists (its bytes are then freed).
    """

    upload_id: str
    length: int
    offset: int
    sha256: str
    metadata: Mapping[str, str] = field(default_factory=_empty)
    completed: bool = False
    created_at: float = 0.0
    touched_at: float = 0.0
    """Clock time of the last activity (creation or stored bytes)."""
    expires_at: float | None = None
    """When an unfinished upload expires (``None`` when it cannot)."""
    gone: Gone | None = None


@dataclass(frozen=True)
class PostInfo:
    """One accepted publish request and where it stands at the current clock time."""

    post_id: str
    """The server's id (what ``POST /posts`` answered)."""
    idempotency_key: str | None
    upload_id: str
    upload_url: str
    sha256: str
    """SHA-256 of the published video's bytes."""
    status: PostStatus
    reason: str | None = None
    retryable: bool = False
    created_at: float = 0.0
    ready_at: float = 0.0
    """Clock time when processing ends (processed or failed)."""
    request: Mapping[str, Any] = field(default_factory=_empty)
    """The JSON body of the publish request (caption and the like)."""


@dataclass(frozen=True)
class RequestRecord:
    """One request that reached the simulator, and what became of it.

    ``headers`` has lower-case names. ``status`` is ``None`` when no answer
    was sent; ``broken`` then says why (``"refuse"``, ``"reset"``,
    ``"timeout"`` or ``"client_gone"``). ``fault`` names the rule that
    shaped the answer (``"Outage"``, ``"Respond"``, ...), if any.
    """

    method: str
    path: str
    status: int | None
    headers: Mapping[str, str]
    at: float = 0.0
    origin: str = ""
    body_bytes: int = 0
    """Request body bytes the server read."""
    fault: str | None = None
    broken: str | None = None
    query: str = ""
    """The query string, without ``?`` (TikTok's upload URLs carry their id there)."""
